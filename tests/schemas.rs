//! Golden tests: schemas/*.json parse, and each store's Arrow schema matches
//! the golden listing in tests/golden/schemas.txt (regenerate deliberately
//! with SELFPLAY_BLESS=1 when a schema version changes).

use selfplay::store::schema::{type_name, Store};

fn listing() -> String {
    let mut out = String::new();
    for store in Store::ALL {
        let s = store.schema();
        out += &format!("{} v{}\n", s.store, s.version);
        for f in s.arrow.fields() {
            let null = if f.is_nullable() { " (nullable)" } else { "" };
            out += &format!("  {}: {}{null}\n", f.name(), type_name(f.data_type()));
        }
    }
    out
}

#[test]
fn store_schemas_match_the_golden_listing() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/schemas.txt");
    let now = listing();
    if std::env::var_os("SELFPLAY_BLESS").is_some() {
        std::fs::write(&path, &now).unwrap();
    }
    let golden = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        now, golden,
        "store schemas changed: bump the version in schemas/ and bless"
    );
}

#[test]
fn schema_names_match_their_store() {
    for store in Store::ALL {
        assert_eq!(store.schema().store, store.name());
    }
}

/// The results store documents every column: its rows are read alone,
/// away from the code that wrote them.
#[test]
fn every_results_field_has_a_doc() {
    let schema = Store::Results.schema();
    for f in schema.arrow.fields() {
        let doc = f.metadata().get("doc").map(String::as_str).unwrap_or("");
        assert!(!doc.is_empty(), "results.{} has no doc", f.name());
    }
}
