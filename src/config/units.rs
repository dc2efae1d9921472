//! Durations (`"30s"`, `"100ms"`, `"24h"`) and byte sizes (`"1MiB"`, `"512KB"`) as
//! written in `topology.toml`. A bare number has no unit and is refused with a hint,
//! because `timeout = "30"` could mean seconds or minutes and guessing is how
//! sessions silently come out wrong.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A duration written with a unit: `ms`, `s`, `m`, `h` or `d`; parts may be combined (`1h30m`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ConfigDuration(pub Duration);

impl ConfigDuration {
    pub fn parse(text: &str) -> Result<Self, String> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err("duration is empty (try \"30s\")".into());
        }
        if trimmed.chars().all(|c| c.is_ascii_digit() || c == '.') {
            return Err(format!(
                "duration \"{text}\" has no unit (try \"{trimmed}s\")"
            ));
        }
        let mut total = Duration::ZERO;
        let mut rest = trimmed;
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(rest.len());
            if digits == 0 {
                return Err(format!(
                    "duration \"{text}\" is not a number followed by a unit (try \"30s\")"
                ));
            }
            let number: f64 = rest[..digits]
                .parse()
                .map_err(|_| format!("duration \"{text}\" has a bad number"))?;
            rest = &rest[digits..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(rest.len());
            let unit = &rest[..unit_len];
            rest = &rest[unit_len..];
            let seconds = match unit {
                "ms" => number / 1000.0,
                "s" => number,
                "m" => number * 60.0,
                "h" => number * 3600.0,
                "d" => number * 86400.0,
                "" => {
                    return Err(format!(
                        "duration \"{text}\" has no unit (try \"{trimmed}s\")"
                    ))
                }
                other => {
                    return Err(format!(
                        "duration \"{text}\" has unknown unit \"{other}\" (use ms, s, m, h or d)"
                    ))
                }
            };
            total += Duration::try_from_secs_f64(seconds)
                .map_err(|_| format!("duration \"{text}\" is out of range"))?;
        }
        Ok(ConfigDuration(total))
    }
}

impl fmt::Display for ConfigDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ConfigDuration;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration with a unit such as \"30s\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                ConfigDuration::parse(v).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Err(E::custom(format!(
                    "duration {v} has no unit (try \"{v}s\")"
                )))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
                self.visit_i64(v as i64)
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Err(E::custom(format!(
                    "duration {v} has no unit (try \"{v}s\")"
                )))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// A size in bytes: a plain integer, or a string with `B`, `KB`/`KiB`, `MB`/`MiB`, `GB`/`GiB`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub fn parse(text: &str) -> Result<Self, String> {
        let trimmed = text.trim();
        let split = trimmed
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(trimmed.len());
        if split == 0 {
            return Err(format!(
                "size \"{text}\" does not start with a number (try \"1MiB\")"
            ));
        }
        let number: u64 = trimmed[..split]
            .parse()
            .map_err(|_| format!("size \"{text}\" is too large"))?;
        let multiplier: u64 = match trimmed[split..].trim() {
            "" | "B" => 1,
            "KB" | "kB" => 1000,
            "KiB" => 1024,
            "MB" => 1000 * 1000,
            "MiB" => 1024 * 1024,
            "GB" => 1000 * 1000 * 1000,
            "GiB" => 1024 * 1024 * 1024,
            other => {
                return Err(format!(
                "size \"{text}\" has unknown unit \"{other}\" (use B, KB, KiB, MB, MiB, GB or GiB)"
            ))
            }
        };
        number
            .checked_mul(multiplier)
            .map(ByteSize)
            .ok_or_else(|| format!("size \"{text}\" is too large"))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size such as 1048576 or \"1MiB\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                ByteSize::parse(v).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom(format!("size {v} is negative")))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(ByteSize(v))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(
            ConfigDuration::parse("100ms").unwrap().0,
            Duration::from_millis(100)
        );
        assert_eq!(
            ConfigDuration::parse("30m").unwrap().0,
            Duration::from_secs(1800)
        );
        assert_eq!(
            ConfigDuration::parse("1h30m").unwrap().0,
            Duration::from_secs(5400)
        );
        assert_eq!(
            ConfigDuration::parse("1.5s").unwrap().0,
            Duration::from_millis(1500)
        );
        assert!(ConfigDuration::parse("30")
            .unwrap_err()
            .contains("has no unit (try \"30s\")"));
        assert!(ConfigDuration::parse("3x")
            .unwrap_err()
            .contains("unknown unit"));
        assert!(ConfigDuration::parse("s").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(ByteSize::parse("1MiB").unwrap().0, 1 << 20);
        assert_eq!(ByteSize::parse("512KB").unwrap().0, 512_000);
        assert_eq!(ByteSize::parse("12").unwrap().0, 12);
        assert!(ByteSize::parse("MiB").is_err());
        assert!(ByteSize::parse("1 parsec").is_err());
    }
}
