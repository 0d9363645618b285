//! Cursor pagination over ordered collections, in the Twilio v1 style.
//!
//! Every list the backend serves is a `BTreeMap` keyed by a [`Position`]; a page is a range read
//! from a cursor, so its cost depends on the page size, not on the list's length. `PageToken`s
//! carry the cursor, the direction and the number of the page they lead to: `PA<pos>_<n>` reads
//! after a position (the next page, number `n`), `PB<pos>_<n>` reads before one (the previous
//! page). A list may anchor its tokens on the boundary item (`PA<pos>_<n>_<sid>`), as the v1
//! service does: the next page then starts after wherever that item is *now*, so an item that
//! moved (an activity bump) shifts the pages. Without a token the first page is served: as in
//! the v1 API, `Page` is only the client's own bookkeeping and never moves the cursor.
//!
//! A token is untrusted input: it parses with checked arithmetic, its page number is at most
//! [`MAX_PAGE`], and anything else (out of range, malformed) is a 400 with code 20001.

use std::collections::BTreeMap;
use std::ops::Bound;

pub(crate) use crate::backend::model::Position;
use crate::wire::resources::Meta;

/// The highest page number a `PageToken` (or `Page`) may carry: far past any list the kit
/// builds, and low enough that `page + 1` never overflows anywhere.
pub(crate) const MAX_PAGE: u32 = 100_000;

/// Where a page starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cursor {
    /// The start of the list.
    First,
    /// After this position.
    After(Position),
    /// Before this position.
    Before(Position),
}

/// A parsed `PageToken`: where to read, and which page number that is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PageRef {
    pub(crate) cursor: Cursor,
    pub(crate) page: u32,
    /// The item the cursor is anchored on, if the list anchors its tokens.
    pub(crate) anchor: Option<String>,
}

impl PageRef {
    /// Parses `PageToken`; no token means the first page.
    pub(crate) fn parse(token: Option<&str>) -> Result<Self, String> {
        let Some(t) = token else {
            return Ok(Self {
                cursor: Cursor::First,
                page: 0,
                anchor: None,
            });
        };
        // The token is echoed in the error: bounded, so a huge token is not echoed whole.
        let bad = || {
            let shown: String = t.chars().take(64).collect();
            let more = if shown.len() < t.len() { "…" } else { "" };
            format!("invalid PageToken `{shown}{more}`")
        };
        let (kind, rest) = t.split_at_checked(2).ok_or_else(bad)?;
        let parts: Vec<&str> = rest.split('_').collect();
        let num = |i: usize| {
            parts
                .get(i)
                .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|p| p.parse::<u64>().ok())
                .ok_or_else(bad)
        };
        let anchor = match parts.len() {
            3 => None,
            4 if !parts[3].is_empty() && parts[3].chars().all(|c| c.is_ascii_alphanumeric()) => {
                Some(parts[3].to_owned())
            }
            _ => return Err(bad()),
        };
        let pos = (num(0)?, num(1)?);
        let page = u32::try_from(num(2)?)
            .ok()
            .filter(|p| *p <= MAX_PAGE)
            .ok_or_else(|| format!("{}: page number out of range 0..={MAX_PAGE}", bad()))?;
        let cursor = match kind {
            "PA" => Cursor::After(pos),
            "PB" => Cursor::Before(pos),
            _ => return Err(bad()),
        };
        Ok(Self {
            cursor,
            page,
            anchor,
        })
    }
}

fn token(kind: &str, (a, b): Position, page: u32, anchor: Option<String>) -> String {
    match anchor {
        Some(sid) => format!("{kind}{a}_{b}_{page}_{sid}"),
        None => format!("{kind}{a}_{b}_{page}"),
    }
}

/// One page read from an ordered map.
pub(crate) struct Page<'a, V> {
    pub(crate) items: Vec<(Position, &'a V)>,
    /// The last item's position, when more items follow.
    pub(crate) next: Option<Position>,
    /// The first item's position, when items come before it.
    pub(crate) previous: Option<Position>,
}

/// Reads one page of `size` items from `map` at `cursor`; `descending` reverses the order.
pub(crate) fn read<V>(
    map: &BTreeMap<Position, V>,
    cursor: Cursor,
    size: usize,
    descending: bool,
) -> Page<'_, V> {
    // Work in "list order": forward is ascending keys, or descending keys when `descending`.
    let forward_from = |after: Option<Position>| -> Box<dyn Iterator<Item = (&Position, &V)> + '_> {
        match (descending, after) {
            (false, None) => Box::new(map.iter()),
            (false, Some(p)) => Box::new(map.range((Bound::Excluded(p), Bound::Unbounded))),
            (true, None) => Box::new(map.iter().rev()),
            (true, Some(p)) => Box::new(map.range((Bound::Unbounded, Bound::Excluded(p))).rev()),
        }
    };
    let backward_from = |before: Position| -> Box<dyn Iterator<Item = (&Position, &V)> + '_> {
        if descending {
            Box::new(map.range((Bound::Excluded(before), Bound::Unbounded)))
        } else {
            Box::new(map.range((Bound::Unbounded, Bound::Excluded(before))).rev())
        }
    };
    if let Cursor::Before(p) = cursor {
        let mut back: Vec<_> = backward_from(p)
            .take(size + 1)
            .map(|(k, v)| (*k, v))
            .collect();
        let more_before = back.len() > size;
        back.truncate(size);
        back.reverse();
        let next = back.last().map(|(k, _)| *k);
        let previous = if more_before {
            back.first().map(|(k, _)| *k)
        } else {
            None
        };
        return Page {
            items: back,
            next,
            previous,
        };
    }
    let after = match cursor {
        Cursor::After(p) => Some(p),
        _ => None,
    };
    let mut items: Vec<(Position, &V)> = forward_from(after)
        .take(size + 1)
        .map(|(k, v)| (*k, v))
        .collect();
    let more_after = items.len() > size;
    items.truncate(size);
    let next = if more_after {
        items.last().map(|(k, _)| *k)
    } else {
        None
    };
    let previous = items
        .first()
        .filter(|(k, _)| backward_from(*k).next().is_some())
        .map(|(k, _)| *k);
    Page {
        items,
        next,
        previous,
    }
}

/// The v1 envelope's `meta`: `{page, page_size, first_page_url, previous_page_url, url, next_page_url, key}`.
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
    /// The page's meta; `current` is the token the page was asked for with, and `anchor` names
    /// the item at a position when the list anchors its tokens.
    pub(crate) fn meta<V>(
        &self,
        page: &Page<'_, V>,
        current: Option<&str>,
        anchor: impl Fn(Position) -> Option<String>,
    ) -> Meta {
        let url = |n: u32, token: Option<&str>| {
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
        let n = self.page;
        let previous = page
            .previous
            .map(|p| token("PB", p, n.saturating_sub(1), anchor(p)));
        // `n` comes from a parsed token (at most MAX_PAGE), but stay total whatever it is.
        let after = n.saturating_add(1);
        let next = page.next.map(|p| token("PA", p, after, anchor(p)));
        Meta {
            page: n,
            page_size: self.page_size,
            first_page_url: url(0, None),
            previous_page_url: previous
                .as_deref()
                .map(|t| url(n.saturating_sub(1), Some(t))),
            url: url(n, current),
            next_page_url: next.as_deref().map(|t| url(after, Some(t))),
            key: self.key.to_owned(),
        }
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
        let mut cursor = Cursor::First;
        loop {
            let p = read(map, cursor, size, descending);
            all.extend(values(&p));
            match p.next {
                Some(pos) => cursor = Cursor::After(pos),
                None => return all,
            }
        }
    }

    #[test]
    fn following_next_cursors_visits_every_item_once_in_both_orders() {
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
    fn previous_cursors_lead_back_to_the_page_before() {
        let map = list(10);
        let p0 = read(&map, Cursor::First, 3, false);
        assert!(p0.previous.is_none());
        let p1 = read(&map, Cursor::After(p0.next.unwrap()), 3, false);
        assert_eq!(values(&p1), [3, 4, 5]);
        let back = read(&map, Cursor::Before(p1.previous.unwrap()), 3, false);
        assert_eq!(values(&back), [0, 1, 2]);
        assert!(back.previous.is_none());
        let p0d = read(&map, Cursor::First, 3, true);
        let p1d = read(&map, Cursor::After(p0d.next.unwrap()), 3, true);
        assert_eq!(values(&p1d), [6, 5, 4]);
        let backd = read(&map, Cursor::Before(p1d.previous.unwrap()), 3, true);
        assert_eq!(values(&backd), [9, 8, 7]);
    }

    #[test]
    fn tokens_carry_their_page_number_and_bad_ones_are_errors() {
        let r = PageRef::parse(Some("PA9_0_1")).unwrap();
        assert_eq!((r.cursor, r.page), (Cursor::After((9, 0)), 1));
        assert_eq!(PageRef::parse(None).unwrap().cursor, Cursor::First);
        let r = PageRef::parse(Some("PA9_0_1_CH01")).unwrap();
        assert_eq!(r.anchor.as_deref(), Some("CH01"));
        for t in [
            "",
            "PA",
            "PX1_2_3",
            "PA1",
            "PA1_2",
            "PAx_1_2",
            "PA1_2_3_",
            "PA1_2_3_a-b",
            "PA1_2_3_4_5",
            "PA0_0_4294967295",
            "PA0_0_4294967296",
            "PA0_0_100001",
            "PA18446744073709551616_0_1",
            "PA0_-1_1",
            "PA0_+1_1",
        ] {
            assert!(PageRef::parse(Some(t)).is_err(), "{t}");
        }
        let r = PageRef::parse(Some("PA18446744073709551615_18446744073709551615_100000")).unwrap();
        assert_eq!(r.page, MAX_PAGE);
        let long = format!("PA{}", "9".repeat(10_000));
        let e = PageRef::parse(Some(&long)).unwrap_err();
        assert!(e.len() < 200, "{e}");
    }
}
