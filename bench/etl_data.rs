//! The ETL workload's input files: `orders.csv` and `customers.csv`,
//! generated from a fixed seed so that every run, on every machine, reads
//! the same bytes.

use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::Result;

/// Customers in `customers.csv`; orders draw their `customer_id` from these.
pub const CUSTOMERS: u64 = 50_000;

const SEED: u64 = 0x5745_4952_4554_4C00; // "WEIRETL\0"

const COUNTRIES: [&str; 20] = [
    "US", "GB", "DE", "FR", "ES", "IT", "NL", "BE", "SE", "NO", "DK", "FI", "PL", "PT", "IE", "CH",
    "AT", "CA", "JP", "AU",
];

/// `(status, weight out of 100)`: about one order in ten is cancelled.
const STATUSES: [(&str, u64); 4] = [
    ("paid", 60),
    ("shipped", 25),
    ("cancelled", 10),
    ("refunded", 5),
];

const SEGMENTS: [&str; 4] = ["consumer", "smb", "enterprise", "public"];

/// splitmix64 (Steele, Lea, Flood 2014): tiny, fast, and good enough to
/// spread synthetic rows; the point is determinism, not statistics.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (Lemire's multiply-shift, without the rejection
    /// step: the bias is below 2^-40 for the ranges used here).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

fn is_leap(year: u32) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

/// `(month, day)`, both from 1, of the 0-based `day_of_year`.
fn month_day(year: u32, day_of_year: u32) -> (u32, u32) {
    let february = if is_leap(year) { 29 } else { 28 };
    let lengths = [31, february, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let mut day = day_of_year;
    for (month, length) in (1..).zip(lengths) {
        if day < length {
            return (month, day + 1);
        }
        day -= length;
    }
    (12, 31)
}

/// Writes `dir/orders.csv` (`rows` orders over 2025) and
/// `dir/customers.csv` ([`CUSTOMERS`] customers).
pub fn generate(dir: &Path, rows: u64) -> Result<()> {
    fs_err::create_dir_all(dir)?;
    let mut rng = SplitMix64(SEED);

    let mut out = BufWriter::with_capacity(1 << 20, fs_err::File::create(dir.join("orders.csv"))?);
    writeln!(out, "id,customer_id,ts,amount,country,status")?;
    let seconds_in_2025 = 365 * 86_400;
    for id in 1..=rows {
        let customer = 1 + rng.below(CUSTOMERS);
        let second = rng.below(seconds_in_2025) as u32;
        let (month, day) = month_day(2025, second / 86_400);
        let in_day = second % 86_400;
        let cents = 50 + rng.below(99_999 - 50 + 1);
        let country = COUNTRIES[rng.below(COUNTRIES.len() as u64) as usize];
        let mut pick = rng.below(100);
        let mut status = STATUSES[0].0;
        for (name, weight) in STATUSES {
            if pick < weight {
                status = name;
                break;
            }
            pick -= weight;
        }
        writeln!(
            out,
            "{id},{customer},2025-{month:02}-{day:02}T{:02}:{:02}:{:02},{}.{:02},{country},{status}",
            in_day / 3600,
            in_day / 60 % 60,
            in_day % 60,
            cents / 100,
            cents % 100,
        )?;
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;

    let mut out =
        BufWriter::with_capacity(1 << 20, fs_err::File::create(dir.join("customers.csv"))?);
    writeln!(out, "customer_id,segment,signup_date")?;
    for customer in 1..=CUSTOMERS {
        let segment = SEGMENTS[rng.below(SEGMENTS.len() as u64) as usize];
        let year = 2020 + rng.below(5) as u32;
        let days = if is_leap(year) { 366 } else { 365 };
        let (month, day) = month_day(year, rng.below(days) as u32);
        writeln!(out, "{customer},{segment},{year}-{month:02}-{day:02}")?;
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar() {
        assert_eq!(month_day(2025, 0), (1, 1));
        assert_eq!(month_day(2025, 58), (2, 28));
        assert_eq!(month_day(2025, 59), (3, 1));
        assert_eq!(month_day(2024, 59), (2, 29));
        assert_eq!(month_day(2025, 364), (12, 31));
        assert_eq!(month_day(2024, 365), (12, 31));
    }

    #[test]
    fn same_seed_same_files() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        generate(a.path(), 1000).unwrap();
        generate(b.path(), 1000).unwrap();
        for file in ["orders.csv", "customers.csv"] {
            let x = fs_err::read(a.path().join(file)).unwrap();
            assert_eq!(x, fs_err::read(b.path().join(file)).unwrap());
        }
        let orders = fs_err::read_to_string(a.path().join("orders.csv")).unwrap();
        assert_eq!(orders.lines().count(), 1001);
        assert!(orders.lines().nth(1).unwrap().starts_with("1,"));
    }
}
