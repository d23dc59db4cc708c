//! Search and paging for the long lists (users, aliases): `?q=` filters, `?page=` picks one page
//! of [`PAGE_SIZE`] rows, so a page stays small with thousands of rows.

use axum::http::{header, HeaderMap, Uri};
use maud::{html, Markup};
use serde::Deserialize;

use super::query_value;

/// Rows per page.
pub(crate) const PAGE_SIZE: i64 = 50;

/// The query string of a list page.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ListQuery {
    /// Search text (empty: everything).
    #[serde(default)]
    pub q: String,
    /// Page number from 1.
    #[serde(default)]
    pub page: Option<i64>,
}

impl ListQuery {
    /// A search for exactly `q`, first page (to show the row an error belongs to).
    pub(crate) fn find(q: &str) -> ListQuery {
        ListQuery {
            q: q.to_owned(),
            page: None,
        }
    }

    /// The page number, at least 1.
    pub(crate) fn page(&self) -> i64 {
        self.page.unwrap_or(1).clamp(1, i64::MAX / PAGE_SIZE)
    }

    /// The first row of this page.
    pub(crate) fn offset(&self) -> i64 {
        (self.page() - 1) * PAGE_SIZE
    }

    fn href(&self, path: &str, page: i64) -> String {
        format!("{path}?q={}&page={page}", query_value(&self.q))
    }
}

/// The search form above a list.
pub(crate) fn search_form(path: &str, query: &ListQuery, label: &str) -> Markup {
    html! {
        form.search method="get" action=(path) role="search" {
            input type="search" name="q" value=(query.q) aria-label=(label) placeholder=(label);
            button type="submit" { "Search" }
            @if !query.q.is_empty() { a href=(path) { "Show all" } }
        }
    }
}

/// What the list shows: "31–60 of 310", previous and next links; or the empty-state text
/// (`empty` when there is nothing at all, a "nothing matches" line for a search).
pub(crate) fn pager(
    path: &str,
    query: &ListQuery,
    shown: usize,
    total: i64,
    empty: &str,
) -> Markup {
    let pages = (total + PAGE_SIZE - 1) / PAGE_SIZE;
    let first = query.offset() + 1;
    let last = query.offset() + shown as i64;
    html! {
        @if total == 0 {
            p.empty {
                @if query.q.is_empty() { (empty) } @else { "Nothing matches “" (query.q) "”." }
            }
        } @else if shown == 0 {
            p.empty { "No page " (query.page()) ". " a href=(query.href(path, 1)) { "First page" } }
        } @else {
            nav.pager aria-label="pages" {
                span { (first) "–" (last) " of " (total) }
                @if query.page() > 1 { a rel="prev" href=(query.href(path, query.page() - 1)) { "‹ Previous" } }
                @if query.page() < pages { a rel="next" href=(query.href(path, query.page() + 1)) { "Next ›" } }
            }
        }
    }
}

/// The `Referer` of a request, parsed (absent or unparsable: `None`).
pub(crate) fn referer(headers: &HeaderMap) -> Option<Uri> {
    headers
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<Uri>().ok())
}

/// Where a POST from list page `list` returns: the page it came from (search and page number
/// kept), read from `Referer`, which same-origin forms send (`Referrer-Policy: same-origin`);
/// only the path and query are used, and only when the path is `list`.
pub(crate) fn return_to(headers: &HeaderMap, list: &str) -> String {
    referer(headers)
        .filter(|u| u.path() == list)
        .and_then(|u| u.path_and_query().map(|pq| pq.as_str().to_owned()))
        .unwrap_or_else(|| list.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_and_links() {
        let q = ListQuery {
            q: "a b&c".into(),
            page: Some(3),
        };
        assert_eq!(q.offset(), 2 * PAGE_SIZE);
        assert_eq!(q.href("/users", 4), "/users?q=a%20b%26c&page=4");
        assert_eq!(ListQuery::default().page(), 1);
        let negative = ListQuery {
            q: String::new(),
            page: Some(-5),
        };
        assert_eq!(negative.offset(), 0);
    }

    #[test]
    fn returns_only_to_the_list() {
        let mut h = HeaderMap::new();
        assert_eq!(return_to(&h, "/users"), "/users");
        h.insert(
            header::REFERER,
            "http://a.test/users?q=x&page=2".parse().unwrap(),
        );
        assert_eq!(return_to(&h, "/users"), "/users?q=x&page=2");
        h.insert(
            header::REFERER,
            "http://evil.test/elsewhere?x".parse().unwrap(),
        );
        assert_eq!(return_to(&h, "/users"), "/users");
    }
}
