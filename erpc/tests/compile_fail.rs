//! Every shape `#[erpc::service]` rejects, with the exact message and span the user sees
//! (`tests/compile_fail/*.stderr`; regenerate with `TRYBUILD=overwrite` and review).

#[test]
fn rejected_service_shapes() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/compile_fail/*.rs");
}
