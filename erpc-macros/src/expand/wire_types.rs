//! Every argument and return type must implement `Serialize` and `Deserialize`: one
//! check per distinct type and trait, spanned on the user's type, so a missing trait is
//! reported once, where the user wrote the type, in words that name the trait. Standard
//! containers and tuples are checked through their elements, so `Hit`, `Vec<Hit>` and
//! `Result<Hit, E>` together report `Hit` once.
//!
//! The generated client methods and server impl would otherwise repeat the error from
//! inside the expansion. They state what they need as `for<'__erpc> T: Trait` where
//! clauses instead: rustc checks a where clause with a binder only where the item is
//! used, not where it is defined, and the bodies type-check under it.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{GenericArgument, PathArguments, Type};

use super::Names;
use crate::parse::{Method, Service};

/// Which side of a call a type travels on, for the wording of the check's error.
#[derive(Clone, Copy, PartialEq)]
enum Role {
    Argument,
    Result,
}

/// `const _: () = { .. };` naming one check per distinct type and serde trait.
pub(crate) fn checks(service: &Service, names: &Names) -> TokenStream {
    let mut typed: Vec<(&Type, Role)> = Vec::new();
    for method in &service.methods {
        for arg in &method.args {
            checked_types(&arg.ty, Role::Argument, &mut typed);
        }
        checked_types(&method.output, Role::Result, &mut typed);
    }
    let mut seen: Vec<String> = Vec::new();
    let mut checks = Vec::new();
    for (ty, role) in typed {
        let key = ty.to_token_stream().to_string();
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        let (serialize, deserialize) = match role {
            Role::Argument => ("serialize_argument", "deserialize_argument"),
            Role::Result => ("serialize_result", "deserialize_result"),
        };
        let (serialize, deserialize) = (names.private(serialize), names.private(deserialize));
        checks.push(quote_spanned! {ty.span()=>
            let _ = #serialize::<#ty>;
            let _ = #deserialize::<#ty>;
        });
    }
    quote! {
        const _: () = {
            #(#checks)*
        };
    }
}

/// Standard containers whose serde impls need exactly their element types' (so
/// `Vec<Hit>` is checked, and reported, as `Hit`), with their number of type arguments.
const CONTAINERS: &[(&str, usize)] = &[
    ("Vec", 1),
    ("VecDeque", 1),
    ("LinkedList", 1),
    ("Option", 1),
    ("Result", 2),
    ("BTreeMap", 2),
    ("BTreeSet", 1),
    ("HashMap", 2),
    ("HashSet", 1),
];

/// Collects the types to check for `ty`: the elements of standard containers and of
/// tuples (serde implements tuples up to 16 elements), or else `ty` itself.
fn checked_types<'a>(ty: &'a Type, role: Role, out: &mut Vec<(&'a Type, Role)>) {
    match ty {
        Type::Tuple(tuple) if tuple.elems.len() <= 16 => {
            for elem in &tuple.elems {
                checked_types(elem, role, out);
            }
        }
        Type::Paren(paren) => checked_types(&paren.elem, role, out),
        Type::Group(group) => checked_types(&group.elem, role, out),
        Type::Path(path) if path.qself.is_none() => match container_elements(&path.path) {
            Some(elements) => {
                for elem in elements {
                    checked_types(elem, role, out);
                }
            }
            None => out.push((ty, role)),
        },
        _ => out.push((ty, role)),
    }
}

/// The element types when `path` names a standard container with all its type
/// arguments written out (`HashMap<K, V>`, not a custom hasher's `HashMap<K, V, S>`).
fn container_elements(path: &syn::Path) -> Option<Vec<&Type>> {
    let last = path.segments.last()?;
    let (_, count) = CONTAINERS.iter().find(|(name, _)| last.ident == name)?;
    let PathArguments::AngleBracketed(arguments) = &last.arguments else {
        return None;
    };
    let types: Vec<&Type> = arguments
        .args
        .iter()
        .filter_map(|arg| match arg {
            GenericArgument::Type(ty) => Some(ty),
            _ => None,
        })
        .collect();
    (types.len() == *count && arguments.args.len() == *count).then_some(types)
}

/// A client method's where clause: it serializes the arguments and deserializes the result.
pub(crate) fn client_bounds(method: &Method, names: &Names) -> TokenStream {
    let serialize = names.private("Serialize");
    let deserialize = names.private("DeserializeOwned");
    let args = method.args.iter().map(|arg| (&arg.ty, &serialize));
    let bounds = distinct_bounds(args.chain([(&method.output, &deserialize)]));
    quote!(where #(#bounds),*)
}

/// The server's `Service` impl predicates: it deserializes arguments and serializes results.
pub(crate) fn server_bounds(service: &Service, names: &Names) -> Vec<TokenStream> {
    let serialize = names.private("Serialize");
    let deserialize = names.private("DeserializeOwned");
    distinct_bounds(service.methods.iter().flat_map(|method| {
        let args = method.args.iter().map(|arg| (&arg.ty, &deserialize));
        args.chain([(&method.output, &serialize)])
    }))
}

/// `for<'__erpc> T: Trait` for each distinct pair, in order.
fn distinct_bounds<'a>(
    pairs: impl Iterator<Item = (&'a Type, &'a TokenStream)>,
) -> Vec<TokenStream> {
    let mut bounds: Vec<TokenStream> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for (ty, trait_path) in pairs {
        let bound = quote!(for<'__erpc> #ty: #trait_path);
        let key = bound.to_string();
        if !seen.contains(&key) {
            seen.push(key);
            bounds.push(bound);
        }
    }
    bounds
}

#[cfg(test)]
mod tests {
    use quote::ToTokens;
    use syn::Type;

    use super::{checked_types, Role};

    fn leaves(ty: Type) -> Vec<String> {
        let mut out = Vec::new();
        checked_types(&ty, Role::Argument, &mut out);
        out.iter()
            .map(|(ty, _)| ty.to_token_stream().to_string().replace(' ', ""))
            .collect()
    }

    #[test]
    fn containers_are_checked_through_their_elements() {
        assert_eq!(
            leaves(syn::parse_quote!(Result<Vec<Hit>, (String, Option<u8>)>)),
            ["Hit", "String", "u8"]
        );
        assert_eq!(
            leaves(syn::parse_quote!(std::collections::HashMap<K, V>)),
            ["K", "V"]
        );
        assert!(leaves(syn::parse_quote!(())).is_empty());
    }

    #[test]
    fn other_types_are_checked_whole() {
        // A custom hasher's `Deserialize` needs more than the elements'; `Box<str>` has no
        // sized element; arrays are implemented only up to 32 elements.
        assert_eq!(
            leaves(syn::parse_quote!(HashMap<K, V, S>)),
            ["HashMap<K,V,S>"]
        );
        assert_eq!(leaves(syn::parse_quote!(Box<str>)), ["Box<str>"]);
        assert_eq!(leaves(syn::parse_quote!([u8; 64])), ["[u8;64]"]);
        assert_eq!(leaves(syn::parse_quote!(Wrapper<Hit>)), ["Wrapper<Hit>"]);
    }
}
