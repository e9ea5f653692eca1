//! The walker mix and run lengths as given on the command line.

use std::time::Duration;

use walkerd_check::Op;

/// Parses `add_item=1,touch=4,list_items=5` into weights; at least one must be positive.
pub fn parse_mix(text: &str) -> Result<Vec<(Op, u32)>, String> {
    let mix = text
        .split(',')
        .map(|part| {
            let (name, weight) =
                part.split_once('=').ok_or(format!("{part:?}: expected walker=weight"))?;
            let op = Op::from_walker(name.trim()).ok_or_else(|| {
                let known: Vec<&str> = Op::ALL.iter().map(|op| op.walker()).collect();
                format!("unknown walker {:?} (known: {})", name.trim(), known.join(", "))
            })?;
            let weight = weight.trim().parse().map_err(|_| format!("{part:?}: bad weight"))?;
            Ok((op, weight))
        })
        .collect::<Result<Vec<_>, String>>()?;
    if mix.iter().all(|(_, weight)| *weight == 0) {
        return Err("every weight is zero".to_owned());
    }
    Ok(mix)
}

/// Parses a duration such as `30s`, `2m`, `500ms` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().map_err(|_| format!("{text:?}: expected e.g. 30s or 2m"))?;
    let seconds = match unit {
        "" | "s" => number,
        "ms" => number / 1000.0,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (ms, s, m or h)")),
    };
    if !(seconds.is_finite() && seconds > 0.0) {
        return Err(format!("{text:?}: must be more than zero"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mix_names_walkers_with_weights() {
        let mix = parse_mix("add_item=1, touch=4,list_items=5").unwrap();
        assert_eq!(mix, vec![(Op::AddItem, 1), (Op::Touch, 4), (Op::ListItems, 5)]);
    }

    #[test]
    fn unknown_walkers_bad_weights_and_all_zero_mixes_are_refused() {
        for bad in ["fly=1", "touch", "touch=x", "touch=0,add_item=0", "touch=-1"] {
            assert!(parse_mix(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn durations_take_units_and_refuse_nonsense() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        for bad in ["", "0s", "ten", "5d", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad} was accepted");
        }
    }
}
