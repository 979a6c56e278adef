//! The demo's service interfaces, shared by `demo-provider` and `demo-consumer`.
//!
//! This is the crate a Dubbo user would call the "API jar": traits annotated with
//! `#[erpc::service]` and the types they exchange.

use serde::{Deserialize, Serialize};

/// A greeting, as in the Java original's example.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The message.
    pub message: String,
    /// A description echoed back by the provider.
    pub description: String,
}

/// Says hello.
#[erpc::service(group = "test1", version = "1.0")]
pub trait HelloService {
    /// Answers `"Hello description is {description}"`.
    async fn hello(&self, hello: Hello) -> String;
}

/// Why a calculation failed; travels as a value inside `Ok(..)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CalcError {
    /// The result does not fit in an `i64`.
    Overflow,
    /// Division by zero.
    DivisionByZero,
}

impl std::fmt::Display for CalcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CalcError::Overflow => f.write_str("overflow"),
            CalcError::DivisionByZero => f.write_str("division by zero"),
        }
    }
}

impl std::error::Error for CalcError {}

/// A small calculator.
#[erpc::service(version = "1.0")]
pub trait Calculator {
    /// `a + b`, or `Overflow`.
    #[erpc(idempotent)]
    async fn add(&self, a: i64, b: i64) -> Result<i64, CalcError>;
    /// `a / b`, or `DivisionByZero`.
    #[erpc(idempotent)]
    async fn divide(&self, a: i64, b: i64) -> Result<i64, CalcError>;
    /// Which provider answered (its advertised address): shows load balancing.
    #[erpc(idempotent)]
    async fn whoami(&self) -> String;
}

/// The greeting the provider builds from a [`Hello`].
pub fn greeting(hello: &Hello) -> String {
    format!("Hello description is {}", hello.description)
}
