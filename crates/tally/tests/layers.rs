//! The layers of docs/architecture.md, checked on the crates' manifests: what each crate must
//! not do shows as a dependency it must not have. A crate that gains one fails here, naming
//! the rule, before the shortcut spreads.

use std::collections::BTreeSet;
use std::path::Path;

/// `(crate, forbidden dependencies, the rule they break)`.
const RULES: &[(&str, &[&str], &str)] = &[
    (
        "tally-core",
        &["sqlx", "tokio", "reqwest"],
        "tally-core does no I/O",
    ),
    (
        "tally-store",
        &["tally-service"],
        "the store holds no business rules",
    ),
    ("tally-store", &["axum"], "the store speaks no HTTP"),
    (
        "tally-service",
        &["axum", "hyper", "tower-http"],
        "the service speaks no HTTP",
    ),
    (
        "tally-service",
        &["sqlx"],
        "the service talks to the store, not SQL",
    ),
    (
        "tally-service",
        &["pdf-canvas"],
        "the service builds datasets; tally-report renders",
    ),
    (
        "tally-server",
        &["sqlx"],
        "the server talks to the service, not SQL",
    ),
    (
        "tally-report",
        &["tally-store", "tally-service", "sqlx"],
        "tally-report renders what it is given",
    ),
    (
        "tally-api",
        &["tally-store", "sqlx"],
        "the API types hold no storage",
    ),
    (
        "tally-api",
        &["tally-service"],
        "the API types hold no logic",
    ),
    (
        "tally-web",
        &["sqlx"],
        "the console's pages use the service, never SQL",
    ),
    (
        "tally-web",
        &["tally-server"],
        "the server mounts the console, not the other way round",
    ),
    (
        "tally-agent",
        &["tally-store"],
        "the agent never talks to the site database",
    ),
    (
        "tally-agent",
        &["tally-server", "tally-service"],
        "the agent talks to the server over HTTP only",
    ),
];

/// The names in a manifest's `[dependencies]` table (not dev- or build-dependencies).
fn dependencies(krate: &str) -> BTreeSet<String> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(krate)
        .join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", manifest.display()));
    let mut inside = false;
    let mut names = BTreeSet::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            inside = line == "[dependencies]";
        } else if inside && !line.is_empty() && !line.starts_with('#') {
            let name = line.split(['=', '.', ' ']).next().unwrap_or_default();
            names.insert(name.to_string());
        }
    }
    names
}

#[test]
fn no_crate_depends_on_what_its_layer_must_not_do() {
    let broken: Vec<String> = RULES
        .iter()
        .flat_map(|(krate, deps, rule)| deps.iter().map(move |dep| (krate, dep, rule)))
        .filter(|(krate, dep, _)| dependencies(krate).contains(**dep))
        .map(|(krate, dep, rule)| format!("{krate} depends on {dep}: {rule}"))
        .collect();
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn the_manifest_reader_sees_the_dependencies_it_checks() {
    // Guards the check above against passing because the reader found nothing.
    let server = dependencies("tally-server");
    for dep in ["tally-service", "tally-api", "axum"] {
        assert!(server.contains(dep), "{dep} missing from {server:?}");
    }
    assert!(dependencies("tally-store").contains("sqlx"));
}
