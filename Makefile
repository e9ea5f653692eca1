# The same commands CI runs (.ci/run), plus the run and bench commands.
.PHONY: ci fmt lint test run bench

ci: fmt lint test

fmt:
	cargo fmt --all -- --check

lint:
	cargo clippy --workspace --all-targets -- -D warnings

test:
	scripts/test.sh

run:
	scripts/run.sh

bench:
	cargo bench -p walkerd-graph --bench commit_throughput
