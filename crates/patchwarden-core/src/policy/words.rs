//! Closed sets of words (classes, clock events, roles …) as enums that read and print the
//! exact words a policy file uses.
//!
//! Policy files are written by people, so a misspelt word must be an error that lists the
//! words that would have been understood, never a silent default. Every such set is declared
//! with [`word_enum!`], which gives the enum its `FromStr`, `Display` and serde forms from one
//! list, so the three can never disagree.

use std::fmt;

/// A word that is not one of the accepted ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{word}` is not a known {kind}; expected one of: {expected}")]
pub struct UnknownWord {
    /// What the word should have been (`class`, `clock event` …).
    pub kind: &'static str,
    pub word: String,
    /// The accepted words, comma-separated.
    pub expected: String,
}

/// Joins the accepted words for an error message.
pub(crate) fn expected(words: &[&str]) -> String {
    words.join(", ")
}

/// Declares an enum whose variants are spelt as the given words in files, on the command line
/// and in JSON.
macro_rules! word_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident as $kind:literal {
            $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The word a file spells this value with.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::policy::words::UnknownWord;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err($crate::policy::words::UnknownWord {
                        kind: $kind,
                        word: s.to_owned(),
                        expected: $crate::policy::words::expected(&[$($text),+]),
                    }),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

pub(crate) use word_enum;

/// Writes a list as `a, b, c`.
pub(crate) fn comma_list<T: fmt::Display>(items: &[T]) -> String {
    let mut out = String::new();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&item.to_string());
    }
    out
}
