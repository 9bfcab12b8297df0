//! Amounts of money in an item's minor currency unit, and the currency itself.

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// An amount in minor units (cents for USD), always within `1 ..= 10^12`.
///
/// There is no way to build an out-of-range `Money`, so code holding one never
/// re-checks it. Arithmetic that could leave the range is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct Money(i64);

/// Why a number is not a valid amount.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[error("must be a whole number of minor units between 1 and 1000000000000, got {0}")]
pub struct MoneyOutOfRange(pub i64);

impl Money {
    /// The smallest valid amount: one minor unit.
    pub const MIN: Money = Money(1);
    /// The largest valid amount: 10^12 minor units.
    pub const MAX: Money = Money(1_000_000_000_000);

    /// Parses a number of minor units.
    ///
    /// # Errors
    /// [`MoneyOutOfRange`] when `minor_units` is outside `1 ..= 10^12`.
    pub const fn new(minor_units: i64) -> Result<Self, MoneyOutOfRange> {
        if minor_units >= Self::MIN.0 && minor_units <= Self::MAX.0 {
            Ok(Money(minor_units))
        } else {
            Err(MoneyOutOfRange(minor_units))
        }
    }

    /// The amount in minor units.
    #[must_use]
    pub const fn minor_units(self) -> i64 {
        self.0
    }

    /// `self + other`, or `None` when the sum leaves the valid range.
    #[must_use]
    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0
            .checked_add(other.0)
            .and_then(|sum| Money::new(sum).ok())
    }

    /// `self − other`, or `None` when the difference is below one minor unit.
    #[must_use]
    pub fn checked_sub(self, other: Money) -> Option<Money> {
        self.0
            .checked_sub(other.0)
            .and_then(|diff| Money::new(diff).ok())
    }
}

impl TryFrom<i64> for Money {
    type Error = MoneyOutOfRange;

    fn try_from(minor_units: i64) -> Result<Self, Self::Error> {
        Money::new(minor_units)
    }
}

impl From<Money> for i64 {
    fn from(money: Money) -> i64 {
        money.0
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A currency as a lower-case ISO 4217 code, as Stripe writes it (`usd`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency(String);

/// Why a string is not a currency code.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("must be a three-letter ISO 4217 currency code such as \"usd\"")]
pub struct InvalidCurrency;

impl Currency {
    /// Parses a three-letter code, in either case; keeps it lower-case.
    ///
    /// # Errors
    /// [`InvalidCurrency`] unless the trimmed input is exactly three ASCII letters.
    pub fn parse(code: &str) -> Result<Self, InvalidCurrency> {
        let code = code.trim();
        if code.len() == 3 && code.bytes().all(|b| b.is_ascii_alphabetic()) {
            Ok(Currency(code.to_ascii_lowercase()))
        } else {
            Err(InvalidCurrency)
        }
    }

    /// The lower-case code.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// How many digits of an amount are its minor unit, by ISO 4217 (2 for
    /// USD, 0 for JPY, 3 for KWD, 4 for CLF); 2 for a code the standard
    /// does not list or gives none for (as ECMA-402's `CurrencyDigits`).
    #[must_use]
    pub fn decimals(&self) -> u32 {
        iso_currency::Currency::from_code(&self.0.to_ascii_uppercase())
            .and_then(iso_currency::Currency::exponent)
            .map_or(2, u32::from)
    }
}

impl Default for Currency {
    fn default() -> Self {
        Currency("usd".to_owned())
    }
}

impl TryFrom<String> for Currency {
    type Error = InvalidCurrency;

    fn try_from(code: String) -> Result<Self, Self::Error> {
        Currency::parse(&code)
    }
}

impl From<Currency> for String {
    fn from(currency: Currency) -> String {
        currency.0
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_bounds_are_inclusive() {
        assert_eq!(Money::new(1).map(Money::minor_units), Ok(1));
        assert_eq!(
            Money::new(1_000_000_000_000).map(Money::minor_units),
            Ok(1_000_000_000_000)
        );
    }

    #[test]
    fn zero_negative_and_too_large_are_refused_not_wrapped() {
        for bad in [0, -1, i64::MIN, 1_000_000_000_001, i64::MAX] {
            assert_eq!(Money::new(bad), Err(MoneyOutOfRange(bad)));
        }
    }

    #[test]
    fn arithmetic_that_leaves_the_range_is_none() {
        assert_eq!(Money::MAX.checked_add(Money::MIN), None);
        assert_eq!(Money::MIN.checked_sub(Money::MIN), None);
        assert_eq!(
            Money::new(5).ok().and_then(|m| m.checked_sub(Money::MIN)),
            Money::new(4).ok()
        );
    }

    #[test]
    fn json_rejects_out_of_range_amounts() {
        assert!(serde_json::from_str::<Money>("0").is_err());
        assert!(serde_json::from_str::<Money>("1.5").is_err());
        assert_eq!(
            serde_json::from_str::<Money>("12500").ok(),
            Money::new(12_500).ok()
        );
    }

    #[test]
    fn money_travels_and_prints_as_its_minor_units() {
        let price = Money::new(12_500).unwrap();
        assert_eq!(serde_json::to_string(&price).unwrap(), "12500");
        assert_eq!(i64::from(price), 12_500);
        assert_eq!(price.to_string(), "12500");
        assert_eq!(
            MoneyOutOfRange(0).to_string(),
            "must be a whole number of minor units between 1 and 1000000000000, got 0"
        );
    }

    #[test]
    fn currencies_travel_and_print_as_lower_case_codes_checked_on_the_way_in() {
        let euro: Currency = serde_json::from_str(r#"" EUR ""#).unwrap();
        assert_eq!(euro.to_string(), "eur");
        assert_eq!(serde_json::to_string(&euro).unwrap(), r#""eur""#);
        let refused = serde_json::from_str::<Currency>(r#""dollars""#).unwrap_err();
        assert!(
            refused
                .to_string()
                .starts_with("must be a three-letter ISO 4217 currency code"),
            "{refused}"
        );
    }

    #[test]
    fn a_currency_knows_its_minor_units_digits() {
        for (code, digits) in [
            ("usd", 2),
            ("JPY", 0),
            ("kwd", 3),
            ("clf", 4),
            ("huf", 2),
            ("xau", 2),
            ("zzz", 2),
        ] {
            assert_eq!(Currency::parse(code).unwrap().decimals(), digits, "{code}");
        }
    }

    #[test]
    fn currency_codes_are_three_letters_kept_lower_case() {
        assert_eq!(
            Currency::parse(" EUR ").map(|c| c.as_str().to_owned()),
            Ok("eur".into())
        );
        for bad in ["", "us", "usdd", "u$d", "12a"] {
            assert_eq!(Currency::parse(bad), Err(InvalidCurrency));
        }
        assert_eq!(Currency::default().as_str(), "usd");
    }

    proptest! {
        #[test]
        fn checked_add_is_some_exactly_when_the_sum_is_in_range(a in 1i64..=1_000_000_000_000, b in 1i64..=1_000_000_000_000) {
            let (ma, mb) = (Money::new(a).unwrap(), Money::new(b).unwrap());
            prop_assert_eq!(ma.checked_add(mb).is_some(), a + b <= 1_000_000_000_000);
        }
    }
}
