//! Output as kubectl prints it: aligned tables, `-o json|yaml|wide`, ages like `5m`.

use clap::ValueEnum;
use jiff::Timestamp;
use serde::Serialize;

/// `-o`: the output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A table [default].
    #[default]
    Table,
    /// A table with more columns.
    Wide,
    /// JSON, as `kubectl get -o json`.
    Json,
    /// YAML, as `kubectl get -o yaml`.
    Yaml,
}

/// Prints `value` as JSON or YAML.
pub fn print_document(value: &impl Serialize, format: Format) -> anyhow::Result<()> {
    let text = match format {
        Format::Yaml => serde_saphyr::to_string(value)?,
        _ => format!("{}\n", serde_json::to_string_pretty(value)?),
    };
    print!("{text}");
    Ok(())
}

/// Prints rows under `header`, columns padded to their widest cell, as kubectl does.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, cell)| {
                if i == last {
                    (*cell).to_owned()
                } else {
                    format!("{cell:<width$}", width = widths[i])
                }
            })
            .collect();
        println!("{}", padded.join("   "));
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// How long ago `then` was, in kubectl's style: `42s`, `5m`, `3h`, `2d`.
pub fn age(then: Timestamp, now: Timestamp) -> String {
    let seconds = now.duration_since(then).as_secs().max(0);
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 2 * 3600 => format!("{}m", s / 60),
        s if s < 2 * 86400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

/// A duration until `then`, or how long ago it passed.
pub fn relative(then: Timestamp, now: Timestamp) -> String {
    if then >= now {
        format!("in {}", age(now, then))
    } else {
        format!("{} ago", age(then, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_like_kubectl() {
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let ago = |s: i64| age(Timestamp::from_second(1_800_000_000 - s).unwrap(), now);
        assert_eq!(ago(5), "5s");
        assert_eq!(ago(600), "10m");
        assert_eq!(ago(3 * 3600), "3h");
        assert_eq!(ago(3 * 86400), "3d");
        let later = Timestamp::from_second(1_800_000_000 + 7200).unwrap();
        assert_eq!(relative(later, now), "in 2h");
        assert_eq!(relative(now, later), "2h ago");
    }
}
