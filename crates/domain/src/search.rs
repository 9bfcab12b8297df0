//! A search of the item list (`GET /items?q=`): what a client typed, and
//! the words it holds.
//!
//! Matching itself is the database's own text search (accents and case are
//! folded there); the domain only bounds the input and names the words, so
//! that a search of nothing but punctuation matches nothing instead of
//! everything.

use thiserror::Error;

/// What a client searched for: at most [`ItemSearch::MAX_CHARS`]
/// characters, with at least one character that is not white space.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemSearch {
    text: String,
    words: Vec<String>,
}

/// Why a search was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[error("must be at most {max} characters", max = ItemSearch::MAX_CHARS)]
pub struct SearchTooLong;

impl ItemSearch {
    /// The longest search, in characters: a search box's sentence, not a
    /// document (bounds the database's parsing).
    pub const MAX_CHARS: usize = 200;

    /// The search in `raw`, or `None` when it is only white space (an empty
    /// search box lists everything).
    ///
    /// # Errors
    /// [`SearchTooLong`] past [`ItemSearch::MAX_CHARS`] (after trimming).
    pub fn parse(raw: &str) -> Result<Option<ItemSearch>, SearchTooLong> {
        // Control characters separate words like spaces (a database takes
        // no NUL in a text).
        let spaced: String = raw
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let text = spaced.trim();
        if text.is_empty() {
            return Ok(None);
        }
        if text.chars().count() > Self::MAX_CHARS {
            return Err(SearchTooLong);
        }
        let words = text
            .split(|c: char| !is_word_char(c))
            .filter(|word| !word.is_empty())
            .map(str::to_lowercase)
            .collect();
        Ok(Some(ItemSearch {
            text: text.to_owned(),
            words,
        }))
    }

    /// The search as typed, trimmed: PostgreSQL parses it as it parsed the
    /// documents (so `3.5` or `example.com` is one token in both), and it
    /// names the list a search's cursors belong to.
    #[must_use]
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The words, lower-cased: runs of letters, digits and combining marks,
    /// as SQLite's tokenizer splits them.
    #[must_use]
    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// Whether the search holds no word (only punctuation), and so matches
    /// no item.
    #[must_use]
    pub fn matches_nothing(&self) -> bool {
        self.words.is_empty()
    }
}

/// A letter or digit, or a combining mark (U+0300–U+036F), so that an
/// accent typed as a separate mark stays in its word.
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || ('\u{300}'..='\u{36f}').contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn blank_is_no_search_and_punctuation_matches_nothing() {
        assert_eq!(ItemSearch::parse("  \t ").unwrap(), None);
        let nul = ItemSearch::parse("\0a\0b\u{7f}").unwrap().unwrap();
        assert_eq!(
            (nul.text(), nul.words()),
            ("a b", &["a".to_owned(), "b".to_owned()][..])
        );
        let odd = ItemSearch::parse(r#" '"%_\ "#).unwrap().unwrap();
        assert!(odd.matches_nothing());
        assert_eq!(odd.text(), r#"'"%_\"#, "kept as typed, trimmed");
    }

    #[test]
    fn words_are_lower_cased_runs_of_letters_digits_and_marks() {
        let search = ItemSearch::parse("Café-Crème  1920s o'Brien Zu\u{308}rich")
            .unwrap()
            .unwrap();
        assert_eq!(
            search.words(),
            ["café", "crème", "1920s", "o", "brien", "zu\u{308}rich"]
        );
        assert!(!search.matches_nothing());
        assert_eq!(search.text(), "Café-Crème  1920s o'Brien Zu\u{308}rich");
    }

    #[test]
    fn length_is_counted_in_characters_after_trimming() {
        let longest = "é".repeat(ItemSearch::MAX_CHARS);
        assert!(
            ItemSearch::parse(&format!("  {longest}  "))
                .unwrap()
                .is_some()
        );
        assert_eq!(
            ItemSearch::parse(&format!("{longest}e")),
            Err(SearchTooLong)
        );
        assert_eq!(SearchTooLong.to_string(), "must be at most 200 characters");
    }

    proptest! {
        #[test]
        fn words_never_hold_a_separator_and_case_does_not_change_them(
            raw in "[a-zA-Z0-9 .,'%_\"\\\\-]{1,60}",
        ) {
            if let Some(search) = ItemSearch::parse(&raw).unwrap() {
                for word in search.words() {
                    prop_assert!(!word.is_empty());
                    prop_assert!(word.chars().all(is_word_char));
                }
                let shouted = ItemSearch::parse(&raw.to_uppercase()).unwrap().unwrap();
                prop_assert_eq!(shouted.words(), search.words());
                prop_assert_eq!(shouted.text(), raw.trim().to_uppercase());
            }
        }
    }
}
