//! Cursor pagination over ordered collections, in the Twilio v1 style.
//!
//! Every list the backend serves is a `BTreeMap` keyed by a [`Position`]; a page is a range read
//! from a cursor, so its cost depends on the page size, not on the list's length. `PageToken`s
//! encode the cursor and the direction: `PA<pos>` reads after a position (next page), `PB<pos>`
//! reads before one (previous page). Without a token, `Page=N` skips `N * PageSize` items (that
//! costs the offset, as deep offsets do on real services).

use std::collections::BTreeMap;
use std::ops::Bound;

use serde_json::{Value, json};

/// A position in a list's order.
pub(crate) type Position = (u64, u64);

/// Where a page starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cursor {
    /// The `page`th page from the start.
    Offset(u32),
    /// After this position.
    After(Position),
    /// Before this position.
    Before(Position),
}

impl Cursor {
    /// Parses `PageToken` (or falls back to `Page`).
    pub(crate) fn parse(token: Option<&str>, page: u32) -> Result<Self, String> {
        let Some(t) = token else {
            return Ok(Self::Offset(page));
        };
        let bad = || format!("invalid PageToken `{t}`");
        let (kind, rest) = t.split_at_checked(2).ok_or_else(bad)?;
        let (a, b) = rest.split_once('_').ok_or_else(bad)?;
        let pos = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
        match kind {
            "PA" => Ok(Self::After(pos)),
            "PB" => Ok(Self::Before(pos)),
            _ => Err(bad()),
        }
    }
}

fn token(kind: &str, (a, b): Position) -> String {
    format!("{kind}{a}_{b}")
}

/// One page read from an ordered map.
pub(crate) struct Page<'a, V> {
    pub(crate) items: Vec<(Position, &'a V)>,
    pub(crate) next: Option<String>,
    pub(crate) previous: Option<String>,
}

/// Reads one page of `size` items from `map` at `cursor`; `descending` reverses the order.
pub(crate) fn read<V>(
    map: &BTreeMap<Position, V>,
    cursor: Cursor,
    size: usize,
    descending: bool,
) -> Page<'_, V> {
    // Work in "list order": forward is ascending keys, or descending keys when `descending`.
    let forward_from = |from: Bound<Position>| -> Box<dyn Iterator<Item = (&Position, &V)> + '_> {
        if descending {
            let to = match from {
                Bound::Excluded(p) => Bound::Excluded(p),
                _ => Bound::Unbounded,
            };
            Box::new(map.range((Bound::Unbounded, to)).rev())
        } else {
            Box::new(map.range((from, Bound::Unbounded)))
        }
    };
    let backward_from = |from: Position| -> Box<dyn Iterator<Item = (&Position, &V)> + '_> {
        if descending {
            Box::new(map.range((Bound::Excluded(from), Bound::Unbounded)))
        } else {
            Box::new(map.range((Bound::Unbounded, Bound::Excluded(from))).rev())
        }
    };
    let mut items: Vec<(Position, &V)> = match cursor {
        Cursor::Offset(page) => forward_from(Bound::Unbounded)
            .skip((page as usize).saturating_mul(size))
            .take(size + 1)
            .map(|(k, v)| (*k, v))
            .collect(),
        Cursor::After(p) => forward_from(Bound::Excluded(p))
            .take(size + 1)
            .map(|(k, v)| (*k, v))
            .collect(),
        Cursor::Before(p) => {
            let mut back: Vec<_> = backward_from(p)
                .take(size + 1)
                .map(|(k, v)| (*k, v))
                .collect();
            let more_before = back.len() > size;
            back.truncate(size);
            back.reverse();
            let next = back.last().map(|(k, _)| token("PA", *k));
            let previous = more_before
                .then(|| back.first().map(|(k, _)| token("PB", *k)))
                .flatten();
            return Page {
                items: back,
                next,
                previous,
            };
        }
    };
    let more_after = items.len() > size;
    items.truncate(size);
    let next = more_after
        .then(|| items.last().map(|(k, _)| token("PA", *k)))
        .flatten();
    let previous = items
        .first()
        .filter(|(k, _)| backward_from(*k).next().is_some())
        .map(|(k, _)| token("PB", *k));
    Page {
        items,
        next,
        previous,
    }
}

/// The v1 envelope: `{<key>: [...], "meta": {page, page_size, first_page_url, previous_page_url, url, next_page_url, key}}`.
pub(crate) struct Envelope<'a> {
    pub(crate) key: &'a str,
    /// Absolute URL of the list, without query.
    pub(crate) list_url: String,
    /// Extra query parameters to keep in every URL (`Order=desc`).
    pub(crate) keep: Vec<(&'a str, String)>,
    pub(crate) page: u32,
    pub(crate) page_size: u32,
}

impl Envelope<'_> {
    pub(crate) fn wrap<V>(&self, page: &Page<'_, V>, items: Vec<Value>) -> Value {
        let url = |n: u64, token: Option<&str>| {
            let mut q: Vec<(String, String)> = self
                .keep
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect();
            q.push(("PageSize".into(), self.page_size.to_string()));
            q.push(("Page".into(), n.to_string()));
            if let Some(t) = token {
                q.push(("PageToken".into(), t.to_owned()));
            }
            let query = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(q)
                .finish();
            format!("{}?{query}", self.list_url)
        };
        let n = u64::from(self.page);
        json!({
            self.key: items,
            "meta": {
                "page": self.page,
                "page_size": self.page_size,
                "first_page_url": url(0, None),
                "previous_page_url": page.previous.as_deref().map(|t| url(n.saturating_sub(1), Some(t))),
                "url": url(n, None),
                "next_page_url": page.next.as_deref().map(|t| url(n + 1, Some(t))),
                "key": self.key,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(n: u64) -> BTreeMap<Position, u64> {
        (0..n).map(|i| ((i, 0), i)).collect()
    }

    fn values(p: &Page<'_, u64>) -> Vec<u64> {
        p.items.iter().map(|(_, v)| **v).collect()
    }

    fn walk(map: &BTreeMap<Position, u64>, size: usize, descending: bool) -> Vec<u64> {
        let mut all = Vec::new();
        let mut cursor = Cursor::Offset(0);
        loop {
            let p = read(map, cursor, size, descending);
            all.extend(values(&p));
            match p.next {
                Some(t) => cursor = Cursor::parse(Some(&t), 0).unwrap(),
                None => return all,
            }
        }
    }

    #[test]
    fn following_next_tokens_visits_every_item_once_in_both_orders() {
        for n in [0, 1, 3, 4, 10] {
            for size in [1, 3, 4, 50] {
                let map = list(n);
                assert_eq!(
                    walk(&map, size, false),
                    (0..n).collect::<Vec<_>>(),
                    "n={n} size={size}"
                );
                assert_eq!(
                    walk(&map, size, true),
                    (0..n).rev().collect::<Vec<_>>(),
                    "n={n} size={size} desc"
                );
            }
        }
    }

    #[test]
    fn previous_tokens_lead_back_to_the_page_before() {
        let map = list(10);
        let p0 = read(&map, Cursor::Offset(0), 3, false);
        assert!(p0.previous.is_none());
        let p1 = read(
            &map,
            Cursor::parse(p0.next.as_deref(), 0).unwrap(),
            3,
            false,
        );
        assert_eq!(values(&p1), [3, 4, 5]);
        let back = read(
            &map,
            Cursor::parse(p1.previous.as_deref(), 0).unwrap(),
            3,
            false,
        );
        assert_eq!(values(&back), [0, 1, 2]);
        assert!(back.previous.is_none());
        let p1d = read(&map, Cursor::Offset(1), 3, true);
        assert_eq!(values(&p1d), [6, 5, 4]);
        let backd = read(
            &map,
            Cursor::parse(p1d.previous.as_deref(), 0).unwrap(),
            3,
            true,
        );
        assert_eq!(values(&backd), [9, 8, 7]);
    }

    #[test]
    fn bad_tokens_are_errors() {
        for t in ["", "PA", "PX1_2", "PA1", "PAx_1"] {
            assert!(Cursor::parse(Some(t), 0).is_err(), "{t}");
        }
    }
}
