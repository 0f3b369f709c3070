//! What `database copy` copied.

use std::io::Write;

use super::Printer;
use crate::sanitize;
use crate::store::copy::CopyReport;

impl Printer {
    /// The rows copied by table, the attachments' bytes and the key to give the servers; as
    /// JSON, `{"to", "tables": {table: rows}, "attachment_bytes", "sealed_secrets", "server_keys", "key_file",
    /// "migrated_from"}`.
    pub fn copied(&self, report: &CopyReport, to: &str) {
        if self.json {
            let tables: serde_json::Map<String, serde_json::Value> = report
                .tables
                .iter()
                .map(|(table, rows)| (table.to_string(), (*rows).into()))
                .collect();
            return self.json(&serde_json::json!({
                "to": to,
                "tables": tables,
                "attachment_bytes": report.attachment_bytes,
                "sealed_secrets": report.sealed_secrets,
                "server_keys": report.server_keys,
                "key_file": report.key_file,
                "migrated_from": report.migrated_from,
            }));
        }
        let text = format!("Copied into {to}:\n{report}");
        self.print(|out| write!(out, "{}", sanitize::text(&text)));
    }
}
