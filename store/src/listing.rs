//! Searched, paged lists of users and aliases for the admin UI: one page of rows plus the number
//! of matches, so a page never loads every row of a large installation.

use sqlx::any::AnyRow;

use crate::aliases::{alias_from_row, Alias};
use crate::db::{get, Store};
use crate::error::Result;
use crate::users::{user_from_row, User};

/// One page of a searched list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The rows of this page, in list order.
    pub items: Vec<T>,
    /// How many rows match the search in all pages.
    pub total: i64,
}

/// A `LIKE` pattern matching `query` anywhere, lower-cased, with `\`, `%` and `_` escaped (the
/// queries say `ESCAPE '\'`), so a search for `a%b` finds that text and not any `a…b`.
fn contains_pattern(query: &str) -> String {
    let mut out = String::from("%");
    for c in query.trim().to_lowercase().chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

impl Store {
    /// Users whose address contains `query` (case-insensitive; empty finds all), ordered by
    /// domain and local part: `limit` rows from `offset`, and the number of matches.
    pub async fn find_users(&self, query: &str, offset: i64, limit: i64) -> Result<Page<User>> {
        macro_rules! from {
            () => {
                "FROM users u JOIN domains d ON d.id = u.domain_id \
                 WHERE LOWER(u.local_part || '@' || d.name) LIKE $1 ESCAPE '\\' "
            };
        }
        let search = Search {
            rows: concat!(
                "SELECT u.id, u.local_part, d.name AS domain, u.quota_bytes, u.used_bytes, \
                 u.disabled ",
                from!(),
                "ORDER BY d.name, u.local_part LIMIT $2 OFFSET $3"
            ),
            count: concat!("SELECT COUNT(*) AS n ", from!()),
        };
        self.search(search, query, offset, limit, user_from_row)
            .await
    }

    /// Aliases whose source or destination contains `query` (case-insensitive; empty finds all),
    /// ordered by source: `limit` rows from `offset`, and the number of matches.
    pub async fn find_aliases(&self, query: &str, offset: i64, limit: i64) -> Result<Page<Alias>> {
        macro_rules! from {
            () => {
                "FROM aliases a JOIN domains d ON d.id = a.domain_id \
                 WHERE LOWER(a.local_part || '@' || d.name) LIKE $1 ESCAPE '\\' \
                 OR LOWER(a.destination) LIKE $1 ESCAPE '\\' "
            };
        }
        let search = Search {
            rows: concat!(
                "SELECT a.id, a.local_part, d.name AS domain, a.destination ",
                from!(),
                "ORDER BY d.name, a.local_part, a.destination LIMIT $2 OFFSET $3"
            ),
            count: concat!("SELECT COUNT(*) AS n ", from!()),
        };
        self.search(search, query, offset, limit, alias_from_row)
            .await
    }

    /// Runs a [`Search`] for `query`: one page of rows and the count.
    async fn search<T>(
        &self,
        search: Search,
        query: &str,
        offset: i64,
        limit: i64,
        from_row: fn(&AnyRow) -> Result<T>,
    ) -> Result<Page<T>> {
        let pattern = contains_pattern(query);
        let rows = sqlx::query(search.rows)
            .bind(&pattern)
            .bind(limit.max(0))
            .bind(offset.max(0))
            .fetch_all(&self.pool)
            .await?;
        let count = sqlx::query(search.count)
            .bind(&pattern)
            .fetch_one(&self.pool)
            .await?;
        Ok(Page {
            items: rows.iter().map(from_row).collect::<Result<_>>()?,
            total: get(&count, "n")?,
        })
    }
}

/// The two queries of a searched list; `$1` is the `LIKE` pattern, `$2` the limit, `$3` the
/// offset.
struct Search {
    rows: &'static str,
    count: &'static str,
}

#[cfg(test)]
mod tests {
    use super::contains_pattern;

    #[test]
    fn patterns_escape_wildcards() {
        assert_eq!(contains_pattern(""), "%%");
        assert_eq!(contains_pattern(" Ab "), "%ab%");
        assert_eq!(contains_pattern("a%b_c\\"), "%a\\%b\\_c\\\\%");
    }
}
