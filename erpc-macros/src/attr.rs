//! The two attribute grammars: `#[erpc::service(key = "value", ..)]` on the trait and
//! `#[erpc(option, ..)]` on its methods.
//!
//! Both are parsed as a comma-separated list of [`Meta`] so that every bad entry is reported,
//! not only the first one.

use proc_macro2::TokenStream;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Attribute, Expr, Lit, LitStr, Meta, Path, Token};

use crate::errors::Errors;

/// Keys accepted by `#[erpc::service(..)]`.
const SERVICE_KEYS: &[&str] = &["name", "group", "version", "crate"];

/// Options accepted by `#[erpc(..)]` on a method.
const METHOD_OPTIONS: &[&str] = &["idempotent", "hash_key"];

/// Arguments of `#[erpc::service(..)]`.
#[derive(Default)]
pub(crate) struct ServiceArgs {
    /// `name = ".."`: interface name overriding `module_path!()::Trait`.
    pub(crate) name: Option<LitStr>,
    /// `group = ".."`: default group (empty when absent).
    pub(crate) group: Option<LitStr>,
    /// `version = ".."`: default version (`1.0` when absent).
    pub(crate) version: Option<LitStr>,
    /// `crate = ".."`: path of the erpc facade when it was renamed (`::erpc` when absent).
    pub(crate) krate: Option<Path>,
}

impl ServiceArgs {
    /// Parses the attribute's arguments, reporting every bad entry into `errors`.
    pub(crate) fn parse(tokens: TokenStream, errors: &mut Errors) -> Self {
        let mut args = ServiceArgs::default();
        let metas = match Punctuated::<Meta, Token![,]>::parse_terminated.parse2(tokens) {
            Ok(metas) => metas,
            Err(err) => {
                errors.push(err);
                return args;
            }
        };
        for meta in metas {
            let Meta::NameValue(nv) = &meta else {
                errors.spanned(
                    &meta,
                    "expected `key = \"value\"`, e.g. `#[erpc::service(group = \"g\", version = \"1.0\")]`",
                );
                continue;
            };
            let key = path_name(&nv.path);
            if !SERVICE_KEYS.contains(&key.as_str()) {
                errors.spanned(&nv.path, unknown("attribute key", &key, SERVICE_KEYS));
                continue;
            }
            let Some(value) = string_literal(&nv.value) else {
                errors.spanned(&nv.value, format!("`{key}` expects a string literal"));
                continue;
            };
            let slot = match key.as_str() {
                "name" => &mut args.name,
                "group" => &mut args.group,
                "version" => &mut args.version,
                _ => {
                    set_crate(&mut args.krate, &nv.path, &value, errors);
                    continue;
                }
            };
            if slot.is_some() {
                errors.spanned(&nv.path, format!("duplicate `{key}`"));
                continue;
            }
            if key != "group" && value.value().trim().is_empty() {
                errors.spanned(&value, format!("`{key}` must not be empty"));
                continue;
            }
            *slot = Some(value);
        }
        args
    }
}

fn set_crate(slot: &mut Option<Path>, key: &Path, value: &LitStr, errors: &mut Errors) {
    if slot.is_some() {
        errors.spanned(key, "duplicate `crate`");
        return;
    }
    match value.parse::<Path>() {
        Ok(path) => *slot = Some(path),
        Err(_) => errors.spanned(value, "`crate` expects a path, e.g. `crate = \"::erpc\"`"),
    }
}

/// Options from a method's `#[erpc(..)]` attributes.
#[derive(Default)]
pub(crate) struct MethodOptions {
    /// `#[erpc(idempotent)]`: the call may be retried on another provider.
    pub(crate) idempotent: bool,
    /// `#[erpc(hash_key = "arg")]`: the argument sticky balancers route by.
    pub(crate) hash_key: Option<LitStr>,
}

impl MethodOptions {
    /// Reads the `#[erpc(..)]` attributes among `attrs`, reporting bad ones into `errors`.
    pub(crate) fn parse(attrs: &[Attribute], errors: &mut Errors) -> Self {
        let mut options = MethodOptions::default();
        for attr in attrs.iter().filter(|attr| is_erpc_attr(attr)) {
            let Meta::List(list) = &attr.meta else {
                errors.spanned(attr, "expected `#[erpc(idempotent)]`");
                continue;
            };
            let metas = match list.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)
            {
                Ok(metas) => metas,
                Err(err) => {
                    errors.push(err);
                    continue;
                }
            };
            for meta in metas {
                if let Meta::NameValue(pair) = &meta {
                    if pair.path.is_ident("hash_key") {
                        match string_literal(&pair.value) {
                            Some(_) if options.hash_key.is_some() => {
                                errors.spanned(&pair.path, "duplicate `hash_key`")
                            }
                            Some(lit) => options.hash_key = Some(lit),
                            None => errors.spanned(
                                &pair.value,
                                "`hash_key` expects an argument name, e.g. `hash_key = \"user_id\"`",
                            ),
                        }
                        continue;
                    }
                }
                let Meta::Path(path) = &meta else {
                    errors.spanned(
                        &meta,
                        "`#[erpc(..)]` options take no value except `hash_key = \"arg\"`",
                    );
                    continue;
                };
                let name = path_name(path);
                match name.as_str() {
                    "idempotent" if options.idempotent => {
                        errors.spanned(path, "duplicate `idempotent`");
                    }
                    "idempotent" => options.idempotent = true,
                    _ => errors.spanned(path, unknown("method option", &name, METHOD_OPTIONS)),
                }
            }
        }
        options
    }
}

/// True for `#[erpc(..)]`, the method attribute this macro consumes.
pub(crate) fn is_erpc_attr(attr: &Attribute) -> bool {
    attr.path().is_ident("erpc")
}

fn path_name(path: &Path) -> String {
    let segments: Vec<String> = path
        .segments
        .iter()
        .map(|segment| segment.ident.to_string())
        .collect();
    segments.join("::")
}

fn string_literal(expr: &Expr) -> Option<LitStr> {
    match expr {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(lit), ..
        }) => Some(lit.clone()),
        _ => None,
    }
}

/// "unknown attribute key `grop`; did you mean `group`?" (or the list of valid keys).
fn unknown(what: &str, found: &str, valid: &[&str]) -> String {
    let closest = valid
        .iter()
        .map(|candidate| (edit_distance(found, candidate), candidate))
        .filter(|(distance, _)| *distance <= 2)
        .min();
    match closest {
        Some((_, candidate)) => format!("unknown {what} `{found}`; did you mean `{candidate}`?"),
        None => {
            let list: Vec<String> = valid.iter().map(|key| format!("`{key}`")).collect();
            format!(
                "unknown {what} `{found}`; expected one of {}",
                list.join(", ")
            )
        }
    }
}

/// Levenshtein distance, for "did you mean" hints on short keys.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_keys_only() {
        assert_eq!(edit_distance("grop", "group"), 1);
        assert_eq!(
            unknown("attribute key", "grop", SERVICE_KEYS),
            "unknown attribute key `grop`; did you mean `group`?"
        );
        assert_eq!(
            unknown("method option", "retry", METHOD_OPTIONS),
            "unknown method option `retry`; expected one of `idempotent`, `hash_key`"
        );
    }
}
