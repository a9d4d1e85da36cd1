//! Axis domains with "nice" round ticks, tick labels, and human durations.

/// A linear axis: a domain with round ends and the ticks between them.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Ticks {
    pub(crate) lo: f64,
    pub(crate) hi: f64,
    pub(crate) step: f64,
    pub(crate) values: Vec<f64>,
}

/// A round step near `range / target`: 1, 2, 2.5 or 5 times a power of ten.
pub(crate) fn nice_step(range: f64, target: usize) -> f64 {
    let raw = range / target.max(1) as f64;
    if !raw.is_finite() || raw <= 0.0 {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let nice = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 2.5 {
        2.5
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// Round ticks covering `[min, max]`, about `target` of them. Degenerate input (equal
/// ends, non-finite values) still gives a usable axis.
pub(crate) fn nice_ticks(min: f64, max: f64, target: usize) -> Ticks {
    let (mut min, mut max) = if min.is_finite() && max.is_finite() && min <= max {
        (min, max)
    } else {
        (0.0, 1.0)
    };
    if max - min <= f64::EPSILON * max.abs().max(1.0) {
        if min == 0.0 {
            max = 1.0;
        } else {
            let pad = min.abs() * 0.1;
            min -= pad;
            max += pad;
        }
    }
    let step = nice_step(max - min, target);
    let lo = (min / step).floor() * step;
    let hi = (max / step).ceil() * step;
    let n = ((hi - lo) / step).round();
    if !n.is_finite() || !(1.0..=1000.0).contains(&n) || !lo.is_finite() || !hi.is_finite() {
        return Ticks {
            lo: 0.0,
            hi: 1.0,
            step: 0.5,
            values: vec![0.0, 0.5, 1.0],
        };
    }
    let values = (0..=n as usize)
        .map(|i| {
            let v = lo + i as f64 * step;
            if v.abs() < step * 1e-9 { 0.0 } else { v }
        })
        .collect();
    Ticks {
        lo,
        hi,
        step,
        values,
    }
}

/// How many decimals show a multiple of `step` exactly.
pub(crate) fn decimals_for(step: f64) -> usize {
    (0..=6)
        .find(|&d| {
            let scaled = step * 10f64.powi(d as i32);
            (scaled - scaled.round()).abs() < 1e-6 * scaled.abs().max(1.0)
        })
        .unwrap_or(6)
}

/// A tick label: fixed decimals and thousands separators.
pub(crate) fn tick_label(v: f64, decimals: usize) -> String {
    let s = format!("{:.*}", decimals, v);
    let (sign, body) = match s.strip_prefix('-') {
        Some(rest) if rest.chars().any(|c| c.is_ascii_digit() && c != '0') => ("-", rest),
        Some(rest) => ("", rest),
        None => ("", s.as_str()),
    };
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match frac {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

/// An axis title: "label (unit)", or the label alone when the unit is empty.
pub(crate) fn axis_title(label: &str, unit: &str) -> String {
    if unit.is_empty() {
        label.to_owned()
    } else {
        format!("{label} ({unit})")
    }
}

const MINUTE: f64 = 60.0;
const HOUR: f64 = 3600.0;
const DAY: f64 = 86_400.0;

/// A duration in seconds written for people: "0 s", "850 ms", "45 s", "2.5 min", "3 h", "30 d".
///
/// Values under ten units keep one decimal when they need it; larger ones are whole.
/// Non-finite or negative durations are written as "–".
pub fn human_duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "–".to_owned();
    }
    let (v, unit) = if seconds == 0.0 {
        (0.0, "s")
    } else if seconds < 1.0 {
        (seconds * 1000.0, "ms")
    } else if seconds < MINUTE {
        (seconds, "s")
    } else if seconds < HOUR {
        (seconds / MINUTE, "min")
    } else if seconds < DAY {
        (seconds / HOUR, "h")
    } else {
        (seconds / DAY, "d")
    };
    let text = if v < 10.0 && (v - v.round()).abs() >= 0.05 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    };
    format!("{text} {unit}")
}

/// Round durations for a logarithmic time axis, in seconds.
const LOG_DURATION_TICKS: [f64; 15] = [
    0.001,
    0.01,
    0.1,
    1.0,
    10.0,
    MINUTE,
    10.0 * MINUTE,
    HOUR,
    6.0 * HOUR,
    DAY,
    7.0 * DAY,
    30.0 * DAY,
    365.0 * DAY,
    3650.0 * DAY,
    36500.0 * DAY,
];

/// Log-axis ticks covering `[min, max]` seconds (both positive), all round human durations.
pub(crate) fn log_duration_ticks(min: f64, max: f64) -> Vec<f64> {
    let first = LOG_DURATION_TICKS[0];
    let last = LOG_DURATION_TICKS[LOG_DURATION_TICKS.len() - 1];
    let min = if min.is_finite() && min > 0.0 {
        min.clamp(first, last)
    } else {
        1.0
    };
    let max = if max.is_finite() && max > 0.0 {
        max.clamp(first, last)
    } else {
        min
    };
    let lo = LOG_DURATION_TICKS
        .iter()
        .rev()
        .find(|&&t| t <= min)
        .copied()
        .unwrap_or(first);
    let hi = LOG_DURATION_TICKS
        .iter()
        .find(|&&t| t >= max && t > lo)
        .copied()
        .unwrap_or(last);
    LOG_DURATION_TICKS
        .iter()
        .copied()
        .filter(|&t| t >= lo && t <= hi)
        .collect()
}

/// Linear ticks for durations up to `max` seconds, in the unit that suits `max`; returns
/// the ticks (in seconds) and the unit's name.
pub(crate) fn linear_duration_ticks(max: f64) -> (Ticks, &'static str) {
    let max = if max.is_finite() && max > 0.0 {
        max
    } else {
        1.0
    };
    let (unit, name) = if max < 2.0 * MINUTE {
        (1.0, "s")
    } else if max < 2.0 * HOUR {
        (MINUTE, "min")
    } else if max < 2.0 * DAY {
        (HOUR, "h")
    } else {
        (DAY, "d")
    };
    let t = nice_ticks(0.0, max / unit, 6);
    let scaled = Ticks {
        lo: t.lo * unit,
        hi: t.hi * unit,
        step: t.step * unit,
        values: t.values.iter().map(|v| v * unit).collect(),
    };
    (scaled, name)
}

/// A data value for a label or tooltip: up to six significant digits (so 99.95 % and
/// 99.999 % stay apart), no trailing zeros, grouped thousands.
pub(crate) fn value_label(v: f64) -> String {
    if !v.is_finite() {
        return "–".to_owned();
    }
    let a = v.abs();
    let d = if a == 0.0 {
        0
    } else {
        (5.0 - a.log10().floor()).clamp(0.0, 6.0) as usize
    };
    let s = tick_label(v, d);
    if s.contains('.') {
        let s = s.trim_end_matches('0').trim_end_matches('.');
        if s == "-0" {
            "0".to_owned()
        } else {
            s.to_owned()
        }
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_data() {
        let t = nice_ticks(3.0, 97.0, 5);
        assert_eq!(t.step, 20.0);
        assert_eq!(t.values, vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
        let t = nice_ticks(0.0, 0.37, 5);
        assert_eq!(t.step, 0.1);
        assert!(t.hi >= 0.37);
    }

    #[test]
    fn degenerate_domains_still_give_ticks() {
        assert_eq!(nice_ticks(0.0, 0.0, 5).hi, 1.0);
        let t = nice_ticks(5.0, 5.0, 5);
        assert!(t.lo < 5.0 && t.hi > 5.0);
        let t = nice_ticks(f64::NAN, f64::INFINITY, 5);
        assert_eq!((t.lo, t.hi), (0.0, 1.0));
        let t = nice_ticks(-f64::MAX, f64::MAX, 5);
        assert!(t.values.len() >= 2);
    }

    #[test]
    fn tick_labels_group_thousands_and_keep_decimals() {
        assert_eq!(tick_label(1_234_567.0, 0), "1,234,567");
        assert_eq!(tick_label(0.25, decimals_for(0.25)), "0.25");
        assert_eq!(tick_label(-1500.0, 0), "-1,500");
        assert_eq!(tick_label(-0.0001, 1), "0.0");
        assert_eq!(decimals_for(2.5), 1);
        assert_eq!(decimals_for(20.0), 0);
    }

    #[test]
    fn value_labels_keep_the_nines_and_drop_trailing_zeros() {
        assert_eq!(value_label(99.95), "99.95");
        assert_eq!(value_label(99.999), "99.999");
        assert_eq!(value_label(420_000.0), "420,000");
        assert_eq!(value_label(1234.5678), "1,234.57");
        assert_eq!(value_label(0.25), "0.25");
        assert_eq!(value_label(0.0), "0");
        assert_eq!(value_label(-0.0000001), "0");
    }

    #[test]
    fn durations_read_like_a_person_wrote_them() {
        assert_eq!(human_duration(0.25), "250 ms");
        assert_eq!(human_duration(0.0), "0 s");
        assert_eq!(human_duration(45.0), "45 s");
        assert_eq!(human_duration(150.0), "2.5 min");
        assert_eq!(human_duration(3.0 * 3600.0), "3 h");
        assert_eq!(human_duration(30.0 * 86_400.0), "30 d");
        assert_eq!(human_duration(f64::NAN), "–");
    }

    #[test]
    fn log_ticks_bracket_the_range_with_round_durations() {
        let t = log_duration_ticks(40.0, 30.0 * 86_400.0);
        assert_eq!(t.first().copied(), Some(10.0));
        assert_eq!(t.last().copied(), Some(30.0 * 86_400.0));
        assert!(!log_duration_ticks(f64::NAN, 0.0).is_empty());
    }
}
