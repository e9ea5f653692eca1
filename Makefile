# The same commands CI runs (.ci/run), plus the run, bench and fuzz commands.
.PHONY: ci fmt lint deps test fuzz run bench

ci: fmt lint deps test fuzz

fmt:
	cargo fmt --all -- --check

lint:
	cargo clippy --workspace --all-targets -- -D warnings

deps:
	scripts/install-tools.sh
	scripts/check-deps.sh

test:
	scripts/test.sh

fuzz:
	scripts/install-tools.sh
	scripts/fuzz.sh 60

run:
	scripts/run.sh

bench:
	cargo bench -p walkerd-server --bench walkers
	cargo bench -p walkerd-graph --bench commit_throughput
