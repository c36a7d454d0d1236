//! What one application's Developer Center may make the operator hold.
//!
//! One operator serves every tenant of a cluster, and a tenant chooses its application's
//! endpoint and the public key its answers are checked with: so an answer that verifies may
//! still come from a server the tenant wrote. Whatever such a server sends, the operator holds
//! at most these amounts for that application; an answer past one is a contract violation of
//! that application alone (its Ready condition says so), never a reason to grow.

use super::wire::AuthorizationRecord;

/// Authorization records one application's list (and so its snapshot) may hold. Alipay+ has
/// far fewer acquirers than this; the operator is benchmarked at this size.
pub const MAX_RECORDS_PER_APPLICATION: u64 = 10_000;
/// Bytes of record content (IDs, names, tokens, products) one application's list may hold:
/// 10,000 records of typical size (about 100 bytes) fit in a quarter of it.
pub const MAX_RECORD_BYTES_PER_APPLICATION: usize = 4 * 1024 * 1024;
/// The longest acquirer ID accepted, in bytes; `spec.acqp.id` admits no longer one.
pub const MAX_ACQUIRER_ID_BYTES: usize = 64;
/// The longest acquirer name accepted, in bytes; `spec.acqp.name` admits no longer one.
pub const MAX_ACQUIRER_NAME_BYTES: usize = 256;
/// The longest Agent-Token accepted, in bytes (real tokens are a few dozen).
pub const MAX_AGENT_TOKEN_BYTES: usize = 4096;
/// Products one record may list: the contract knows four; duplicates are tolerated, floods not.
pub const MAX_PRODUCTS_PER_RECORD: usize = 16;

/// Pages one list may take at `page_size` records a page: every record once, one more page
/// for records added while paging, and nothing past that (a server whose `totalCount` keeps
/// growing, or that repeats full pages, cannot keep the operator paging).
pub fn max_pages(page_size: u32) -> u32 {
    let page_size = u64::from(page_size.max(1));
    let pages = MAX_RECORDS_PER_APPLICATION.div_ceil(page_size) + 1;
    u32::try_from(pages).unwrap_or(u32::MAX)
}

/// What one list has taken so far, checked page by page before a page is handed on.
#[derive(Debug, Default)]
pub(crate) struct ListBudget {
    pages: u32,
    records: u64,
    bytes: usize,
}

impl ListBudget {
    /// Admits one page asked for with `page_size`, or says which bound it breaks.
    pub(crate) fn admit(
        &mut self,
        page_size: u32,
        total_count: u64,
        records: &[AuthorizationRecord],
    ) -> Result<(), String> {
        self.pages += 1;
        if self.pages > max_pages(page_size) {
            return Err(format!(
                "the list did not end after {} pages of {page_size}",
                max_pages(page_size)
            ));
        }
        if total_count > MAX_RECORDS_PER_APPLICATION {
            return Err(format!(
                "totalCount is {total_count}, more than the {MAX_RECORDS_PER_APPLICATION} \
                 records the operator holds for one application"
            ));
        }
        if records.len() > page_size as usize {
            return Err(format!(
                "a page holds {} records where {page_size} were asked for",
                records.len()
            ));
        }
        for record in records {
            self.bytes = self.bytes.saturating_add(record_bytes(record)?);
        }
        self.records += records.len() as u64;
        if self.records > MAX_RECORDS_PER_APPLICATION {
            return Err(format!(
                "the list holds more than the {MAX_RECORDS_PER_APPLICATION} records the \
                 operator holds for one application"
            ));
        }
        if self.bytes > MAX_RECORD_BYTES_PER_APPLICATION {
            return Err(format!(
                "the list holds more than the {MAX_RECORD_BYTES_PER_APPLICATION} bytes of \
                 records the operator holds for one application"
            ));
        }
        Ok(())
    }
}

/// The bytes a record's content takes, or which of its fields is past its bound. The text
/// names the bound, never the content: the content came from the other end.
fn record_bytes(record: &AuthorizationRecord) -> Result<usize, String> {
    let fields = [
        (
            "acquirerId",
            record.acquirer_id.len(),
            MAX_ACQUIRER_ID_BYTES,
        ),
        (
            "acquirerName",
            record.acquirer_name.len(),
            MAX_ACQUIRER_NAME_BYTES,
        ),
        (
            "agentToken",
            record.agent_token.expose().len(),
            MAX_AGENT_TOKEN_BYTES,
        ),
    ];
    for (field, length, max) in fields {
        if length > max {
            return Err(format!("a record's {field} is {length} bytes, over {max}"));
        }
    }
    if record.products.len() > MAX_PRODUCTS_PER_RECORD {
        return Err(format!(
            "a record lists {} products, over {MAX_PRODUCTS_PER_RECORD}",
            record.products.len()
        ));
    }
    Ok(fields.iter().map(|(_, length, _)| length).sum::<usize>() + record.products.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        api::Product,
        devcenter::wire::{AgentToken, AuthorizationStatus},
    };

    fn record(id: &str, token_bytes: usize) -> AuthorizationRecord {
        AuthorizationRecord {
            acquirer_id: id.into(),
            acquirer_name: "Acquirer".into(),
            status: AuthorizationStatus::Active,
            products: vec![Product::CashierPayment],
            agent_token: AgentToken::new("t".repeat(token_bytes)),
            authorized_time: "2026-01-01T00:00:00Z".parse().unwrap(),
            update_time: "2026-01-01T00:00:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn a_list_of_the_benchmarked_size_fits() {
        let mut budget = ListBudget::default();
        let page: Vec<_> = (0..100).map(|i| record(&i.to_string(), 300)).collect();
        for _ in 0..100 {
            budget.admit(100, 10_000, &page).unwrap();
        }
        let refused = budget.admit(100, 10_000, &page[..1]).unwrap_err();
        assert!(refused.contains("more than the 10000 records"), "{refused}");
    }

    #[test]
    fn endless_lists_stop_at_the_page_bound() {
        let mut budget = ListBudget::default();
        // Pages that hold nothing: the record and byte counts alone would never stop them.
        let mut outcome = Ok(());
        let mut pages = 0;
        while outcome.is_ok() {
            outcome = budget.admit(100, 5, &[]);
            pages += 1;
        }
        assert_eq!(pages, max_pages(100) as usize + 1);
        let reason = outcome.unwrap_err();
        assert!(reason.contains("did not end after 101 pages"), "{reason}");
    }

    #[test]
    fn oversized_fields_counts_and_pages_are_refused_by_name() {
        let cases = [
            (
                vec![record(&"9".repeat(65), 1)],
                5,
                "acquirerId is 65 bytes, over 64",
            ),
            (
                vec![record("1", 4097)],
                5,
                "agentToken is 4097 bytes, over 4096",
            ),
            (vec![record("1", 1)], 10_001, "totalCount is 10001"),
            (
                (0..3).map(|i| record(&i.to_string(), 1)).collect(),
                5,
                "a page holds 3 records where 2 were asked for",
            ),
        ];
        for (page, total, expected) in cases {
            let reason = ListBudget::default().admit(2, total, &page).unwrap_err();
            assert!(reason.contains(expected), "{reason}");
        }
        let mut flooded = record("1", 1);
        flooded.products = vec![Product::AutoDebit; 17];
        let reason = ListBudget::default().admit(2, 1, &[flooded]).unwrap_err();
        assert!(reason.contains("lists 17 products"), "{reason}");
    }

    #[test]
    fn the_byte_bound_holds_below_the_record_bound() {
        let mut budget = ListBudget::default();
        let page: Vec<_> = (0..100).map(|i| record(&i.to_string(), 4096)).collect();
        let mut outcome = Ok(());
        let mut pages = 0;
        while outcome.is_ok() {
            outcome = budget.admit(100, 10_000, &page);
            pages += 1;
        }
        assert!(pages < 100, "{pages} pages");
        let reason = outcome.unwrap_err();
        assert!(reason.contains("bytes of records"), "{reason}");
        assert!(!reason.contains("tttt"), "{reason}");
    }
}
