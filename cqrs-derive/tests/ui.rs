//! Every refusal of `#[derive(DomainEvent)]`, built and its message compared with the
//! `.stderr` beside it (regenerate with `TRYBUILD=overwrite`, then read what changed).

#[test]
fn refusals_fail_to_compile_with_a_message_that_says_what_to_do() {
    trybuild::TestCases::new().compile_fail("tests/ui/*.rs");
}
