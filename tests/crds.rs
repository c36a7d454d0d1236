//! The checked-in CRDs must be exactly what the Rust types generate (`make crds` rewrites them).

use acqp_operator::cli::crd;

#[test]
fn checked_in_crds_match_the_types() {
    for (file, definition) in crd::all() {
        let path = format!("{}/crds/{file}", env!("CARGO_MANIFEST_DIR"));
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        let generated = crd::to_yaml(&definition).expect("CRD serializes");
        assert!(
            checked_in == generated,
            "{path} is out of date with src/api: run `make crds` and commit the result"
        );
    }
}
