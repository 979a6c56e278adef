//! Collects every problem found in the user's trait so one build reports all of them.

use std::fmt::Display;

use proc_macro2::TokenStream;
use quote::ToTokens;

/// An accumulator of [`syn::Error`]s, each pointing at the user's own tokens.
#[derive(Default)]
pub(crate) struct Errors {
    combined: Option<syn::Error>,
    count: usize,
}

impl Errors {
    /// Records `error`.
    pub(crate) fn push(&mut self, error: syn::Error) {
        self.count += 1;
        match &mut self.combined {
            Some(errors) => errors.combine(error),
            None => self.combined = Some(error),
        }
    }

    /// Records `message` spanned on `tokens`.
    pub(crate) fn spanned(&mut self, tokens: impl ToTokens, message: impl Display) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    /// True when nothing was recorded.
    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// How many errors were recorded.
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// One `compile_error!` per recorded error.
    pub(crate) fn into_compile_errors(self) -> TokenStream {
        self.combined
            .map(syn::Error::into_compile_error)
            .unwrap_or_default()
    }
}
