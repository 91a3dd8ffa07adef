//! Batch plumbing shared by every upsert: de-duplication by natural key and
//! mapping database answers back to input order.
//!
//! Postgres refuses an `INSERT … ON CONFLICT DO UPDATE` that touches the same
//! row twice in one statement, so a batch is first reduced to one row per
//! natural key (the last one wins, as it would with sequential writes).

use std::collections::HashMap;

/// A natural key of the shape every mail table has: a parent id and a text id.
pub(crate) type NaturalKey = (i64, String);

/// Rows that know their natural key.
pub(crate) trait Keyed {
    fn natural_key(&self) -> NaturalKey;
}

/// The distinct rows of a batch (last occurrence wins) and, for every input
/// position, the index of its distinct row.
pub(crate) struct Distinct<'a, T> {
    pub rows: Vec<&'a T>,
    pub positions: Vec<usize>,
}

pub(crate) fn distinct_by_key<T: Keyed>(rows: &[T]) -> Distinct<'_, T> {
    let mut index: HashMap<NaturalKey, usize> = HashMap::with_capacity(rows.len());
    let mut distinct: Vec<&T> = Vec::with_capacity(rows.len());
    let mut positions = Vec::with_capacity(rows.len());
    for row in rows {
        let key = row.natural_key();
        match index.get(&key) {
            Some(&i) => {
                distinct[i] = row;
                positions.push(i);
            }
            None => {
                index.insert(key, distinct.len());
                positions.push(distinct.len());
                distinct.push(row);
            }
        }
    }
    Distinct {
        rows: distinct,
        positions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Row(i64, &'static str, u8);
    impl Keyed for Row {
        fn natural_key(&self) -> NaturalKey {
            (self.0, self.1.to_owned())
        }
    }

    #[test]
    fn last_duplicate_wins_and_positions_follow_input() {
        let rows = [
            Row(1, "a", 1),
            Row(1, "b", 2),
            Row(1, "a", 3),
            Row(2, "a", 4),
        ];
        let d = distinct_by_key(&rows);
        assert_eq!(d.rows.iter().map(|r| r.2).collect::<Vec<_>>(), [3, 2, 4]);
        assert_eq!(d.positions, [0, 1, 0, 2]);
    }
}
