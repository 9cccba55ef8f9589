//! Fails when a checked-in JSON Schema under `schemas/json/` differs from the types.

#[test]
fn json_schema_files_are_fresh() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("json");
    let update = std::env::var_os("UPDATE_SCHEMAS").is_some();
    let mut stale = Vec::new();
    for (name, text) in schemas::schema_files::all() {
        let path = dir.join(name);
        if update {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &text).unwrap();
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(on_disk) if on_disk == text => {}
            _ => stale.push(name),
        }
    }
    assert!(
        stale.is_empty(),
        "stale JSON Schema files {stale:?}: run `UPDATE_SCHEMAS=1 cargo test -p schemas`"
    );
}
