//! Amounts in base units, and exact conversion between coin strings and base units.
//!
//! No float ever touches an amount: coin strings are parsed digit by digit.

use std::fmt;
use std::str::FromStr;

/// An amount of coins in base units (1 coin = 100,000,000 units).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Amount(u64);

/// A coin string that does not name an exact amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// Empty text.
    #[error("amount is empty")]
    Empty,
    /// A minus sign.
    #[error("amount {0:?} is negative")]
    Negative(String),
    /// More than 8 digits after the point.
    #[error("amount {0:?} has more than 8 decimals (the smallest unit is 0.00000001)")]
    TooPrecise(String),
    /// More than `u64::MAX` base units.
    #[error("amount {0:?} is too large (at most 184467440737.09551615)")]
    Overflow(String),
    /// Anything else that is not digits with an optional point.
    #[error("amount {0:?} is not a number like 1.5 or 0.00000001")]
    Invalid(String),
}

impl Amount {
    /// Base units in one coin.
    pub const UNITS_PER_COIN: u64 = 100_000_000;
    /// Digits after the point in a coin string.
    pub const DECIMALS: usize = 8;
    /// Nothing.
    pub const ZERO: Amount = Amount(0);
    /// The largest amount.
    pub const MAX: Amount = Amount(u64::MAX);

    /// An amount of `units` base units.
    pub const fn from_units(units: u64) -> Amount {
        Amount(units)
    }

    /// The amount in base units.
    pub const fn units(self) -> u64 {
        self.0
    }

    /// `self + rhs`, or `None` on overflow.
    pub fn checked_add(self, rhs: Amount) -> Option<Amount> {
        self.0.checked_add(rhs.0).map(Amount)
    }

    /// `self - rhs`, or `None` if it would be negative.
    pub fn checked_sub(self, rhs: Amount) -> Option<Amount> {
        self.0.checked_sub(rhs.0).map(Amount)
    }

    /// Parses a coin string such as `"1.5"` or `"0.00000001"` exactly.
    pub fn parse_coins(s: &str) -> Result<Amount, AmountError> {
        let shown = || s.chars().take(40).collect::<String>();
        if s.is_empty() {
            return Err(AmountError::Empty);
        }
        if s.starts_with('-') {
            return Err(AmountError::Negative(shown()));
        }
        let (int, frac) = match s.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (s, None),
        };
        let all_digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(int) || frac.is_some_and(|f| !all_digits(f)) {
            return Err(AmountError::Invalid(shown()));
        }
        let frac = frac.unwrap_or("");
        if frac.len() > Self::DECIMALS {
            return Err(AmountError::TooPrecise(shown()));
        }
        let mut units: u64 = 0;
        for b in int.bytes() {
            units = units
                .checked_mul(10)
                .and_then(|u| u.checked_add(u64::from(b - b'0')))
                .ok_or_else(|| AmountError::Overflow(shown()))?;
        }
        let mut frac_units: u64 = 0;
        for i in 0..Self::DECIMALS {
            let digit = frac.as_bytes().get(i).map_or(0, |b| u64::from(b - b'0'));
            frac_units = frac_units * 10 + digit;
        }
        units
            .checked_mul(Self::UNITS_PER_COIN)
            .and_then(|u| u.checked_add(frac_units))
            .map(Amount)
            .ok_or_else(|| AmountError::Overflow(shown()))
    }
}

/// Shown in coins with as few decimals as exactness allows: `50`, `1.5`, `0.00000001`.
impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / Self::UNITS_PER_COIN;
        let frac = self.0 % Self::UNITS_PER_COIN;
        if frac == 0 {
            return write!(f, "{whole}");
        }
        let digits = format!("{frac:08}");
        write!(f, "{whole}.{}", digits.trim_end_matches('0'))
    }
}

impl FromStr for Amount {
    type Err = AmountError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Amount::parse_coins(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_exact_coin_strings() {
        assert_eq!(Amount::parse_coins("1.5").unwrap().units(), 150_000_000);
        assert_eq!(Amount::parse_coins("0.00000001").unwrap().units(), 1);
        assert_eq!(Amount::parse_coins("50").unwrap().units(), 5_000_000_000);
        assert_eq!(Amount::parse_coins("0").unwrap(), Amount::ZERO);
        assert_eq!(Amount::parse_coins("007.10").unwrap().units(), 710_000_000);
        assert_eq!(
            Amount::parse_coins("184467440737.09551615").unwrap(),
            Amount::MAX
        );
    }

    #[test]
    fn rejects_inexact_or_junk_coin_strings() {
        use AmountError::*;
        let err = |s: &str| Amount::parse_coins(s).unwrap_err();
        assert_eq!(err(""), Empty);
        assert!(matches!(err("-1"), Negative(_)));
        assert!(matches!(err("0.000000001"), TooPrecise(_)));
        assert!(matches!(err("184467440737.09551616"), Overflow(_)));
        assert!(matches!(err("99999999999999999999"), Overflow(_)));
        for junk in [
            "1e5", "NaN", "inf", " 1", "1 ", "+1", ".5", "1.", "1.2.3", "0x10", "１",
        ] {
            assert!(matches!(err(junk), Invalid(_)), "{junk}");
        }
    }

    #[test]
    fn displays_minimal_decimals() {
        assert_eq!(Amount::from_units(150_000_000).to_string(), "1.5");
        assert_eq!(Amount::from_units(1).to_string(), "0.00000001");
        assert_eq!(Amount::from_units(5_000_000_000).to_string(), "50");
        assert_eq!(Amount::ZERO.to_string(), "0");
    }

    proptest! {
        #[test]
        fn display_then_parse_is_identity(units in any::<u64>()) {
            let a = Amount::from_units(units);
            prop_assert_eq!(Amount::parse_coins(&a.to_string()).unwrap(), a);
        }
    }
}
