//! The consent page an ACQP opens from an authorization URL: scope, terms, Authorize or Skip.
//!
//! Plain HTML forms, no JavaScript: the checkbox is `required` so browsers block a submit
//! without it, and the server checks it again because a form can be posted without a browser.

use std::sync::Arc;

use axum::{
    Form,
    extract::{Path, State},
    http::StatusCode,
    response::{Html, IntoResponse, Response},
};
use serde::Deserialize;

use crate::api::Product;

use super::{
    Shared,
    state::{Closed, UrlRecord},
};

/// The fields the form posts.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ConsentForm {
    decision: Option<String>,
    accept_terms: Option<String>,
}

/// `GET /consent/{id}`: the review page, or why the URL cannot be used.
pub(crate) async fn show(State(sim): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let state = sim.state();
    match state.open_url(&id, sim.now()) {
        Ok(url) => review(&Scope::of(url, &state), None, StatusCode::OK),
        Err((closed, _)) => closed_page(&closed, StatusCode::OK),
    }
}

/// `POST /consent/{id}`: Authorize (needs `acceptTerms=true`) or Skip.
pub(crate) async fn decide(
    State(sim): State<Arc<Shared>>,
    Path(id): Path<String>,
    Form(form): Form<ConsentForm>,
) -> Response {
    let now = sim.now();
    let mut state = sim.state();
    let scope = match state.open_url(&id, now) {
        Ok(url) => Scope::of(url, &state),
        Err((closed, _)) => return closed_page(&closed, StatusCode::CONFLICT),
    };
    match form.decision.as_deref() {
        Some("authorize") if form.accept_terms.as_deref() == Some("true") => {
            let change = state.grant(&id, now);
            drop(state);
            match change {
                Ok(change) => {
                    sim.record_changes(vec![change]);
                    page(
                        StatusCode::OK,
                        "Authorized",
                        &format!(
                            "<h1>Authorized</h1><p>{} may now use {} on behalf of {}. \
                             You can close this page.</p>",
                            esc(&scope.app_name),
                            Product::join_console_names(&scope.products),
                            esc(&scope.acquirer_name),
                        ),
                    )
                }
                Err(closed) => closed_page(&closed, StatusCode::CONFLICT),
            }
        }
        Some("authorize") => review(
            &scope,
            Some("Accept the terms to authorize, or choose Skip."),
            StatusCode::BAD_REQUEST,
        ),
        Some("skip") => {
            drop(state);
            sim.stats().consent_skips += 1;
            page(
                StatusCode::OK,
                "Skipped",
                &format!(
                    "<h1>Skipped</h1><p>Nothing was authorized. This link stays valid until {}; \
                     <a href=\"/consent/{}\">open it again</a> to authorize later.</p>",
                    time(&scope),
                    esc(&id),
                ),
            )
        }
        _ => review(
            &scope,
            Some("Choose Authorize or Skip."),
            StatusCode::BAD_REQUEST,
        ),
    }
}

/// What the page shows about a URL, copied out so the state lock is not held while rendering.
struct Scope {
    id: String,
    app_name: String,
    client_id: String,
    acquirer_name: String,
    acquirer_id: String,
    products: Vec<Product>,
    expires: String,
    expires_iso: String,
}

impl Scope {
    fn of(url: &UrlRecord, state: &super::state::State) -> Self {
        Self {
            id: url.id.clone(),
            app_name: state
                .catalog
                .application(&url.client_id)
                .map_or_else(|| url.client_id.clone(), |a| a.name.clone()),
            client_id: url.client_id.clone(),
            acquirer_name: state.acquirer_name(&url.acquirer_id),
            acquirer_id: url.acquirer_id.clone(),
            products: url.products.iter().copied().collect(),
            expires: url.expires_at.strftime("%Y-%m-%d %H:%M UTC").to_string(),
            expires_iso: url.expires_at.to_string(),
        }
    }
}

fn time(scope: &Scope) -> String {
    format!(
        "<time datetime=\"{}\">{}</time>",
        esc(&scope.expires_iso),
        esc(&scope.expires)
    )
}

fn review(scope: &Scope, error: Option<&str>, status: StatusCode) -> Response {
    let title = match error {
        Some(_) => "Error: review authorization request",
        None => "Review authorization request",
    };
    let error = error.map_or_else(String::new, |e| {
        format!(
            "<p class=\"error\" role=\"alert\" id=\"form-error\">{}</p>",
            esc(e)
        )
    });
    let products: String = scope
        .products
        .iter()
        .map(|p| format!("<li>{}</li>", p.console_name()))
        .collect();
    let body = format!(
        r#"<h1>Review authorization request</h1>
<p>Signed in as ACQP <strong>{acq}</strong> ({acq_id}).</p>
<dl>
  <dt>Application</dt><dd>{app} (<code>{client}</code>)</dd>
  <dt>ACQP</dt><dd>{acq} (<code>{acq_id}</code>)</dd>
  <dt>Products</dt><dd><ul id="products">{products}</ul></dd>
  <dt>Link expires</dt><dd>{expires}</dd>
</dl>
<p>Authorizing lets {app} call Alipay+ APIs on behalf of {acq} for the products above. A new
Agent-Token replaces any earlier one.</p>
{error}<form method="post" action="/consent/{id}">
  <p><input type="checkbox" name="acceptTerms" value="true" id="accept-terms" required>
  <label for="accept-terms">I accept the terms</label></p>
  <p><button type="submit" name="decision" value="authorize">Authorize</button>
  <button type="submit" name="decision" value="skip" formnovalidate>Skip</button></p>
</form>"#,
        acq = esc(&scope.acquirer_name),
        acq_id = esc(&scope.acquirer_id),
        app = esc(&scope.app_name),
        client = esc(&scope.client_id),
        expires = time(scope),
        id = esc(&scope.id),
    );
    page(status, title, &body)
}

fn closed_page(closed: &Closed, post_status: StatusCode) -> Response {
    let (status, title, text) = match closed {
        Closed::NotFound => (
            StatusCode::NOT_FOUND,
            "Authorization URL not found",
            "This authorization URL does not exist. Ask the TSP for a new one.",
        ),
        Closed::Completed => (
            post_status,
            "Already completed",
            "This authorization was already completed. Nothing more to do.",
        ),
        Closed::Expired => (
            StatusCode::GONE,
            "Expired",
            "This authorization URL has expired. Ask the TSP for a new one.",
        ),
        Closed::Superseded => (
            StatusCode::GONE,
            "Superseded by a newer URL",
            "This authorization URL was superseded by a newer URL. Use the newest link the TSP sent.",
        ),
    };
    page(status, title, &format!("<h1>{title}</h1><p>{text}</p>"))
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Alipay+ ACQP authorization (simulator)</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; }}
dt {{ font-weight: bold; }} .error {{ color: #a00; font-weight: bold; }}
button {{ font-size: 1rem; padding: .4rem 1rem; margin-right: .5rem; }}
</style>
</head>
<body><main>
{body}
</main></body>
</html>
"#
    );
    (status, Html(html)).into_response()
}

/// Escapes text for HTML content and double-quoted attributes.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn console_spelling() {
        let names: Vec<_> = Product::ALL.iter().map(|p| p.console_name()).collect();
        assert_eq!(
            names,
            [
                "Cashier Payment",
                "Auto Debit",
                "User-presented Mode Payment",
                "Merchant-presented Mode Payment"
            ]
        );
    }
}
