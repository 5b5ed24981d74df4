//! Test support: checks a Rust mirror of a WGSL struct (a uniform block or a
//! storage struct the host writes as bytes) against the struct as naga reads
//! it from the shader, so that a field added, moved or retyped on one side
//! only fails `cargo test` instead of feeding a kernel shifted values.
//!
//! Each mirror is checked by the launcher module that owns it (its fields are
//! private there) with [`check_mirror`]:
//! every field listed, padding included; the mirror's size is the WGSL
//! struct's span; every named member (not `_`-prefixed padding) has the same
//! name, offset, size and scalar type on both sides. The sizes of the listed
//! fields must add up to the mirror's (`bytemuck::Pod` rules out implicit
//! padding), so a field left out of the list cannot go unchecked, and
//! [`every_repr_c_struct_is_checked`] counts the mirrors in `src/` against
//! the checks, so a new mirror without a check fails too.

use crate::gpu::Shader;
use naga::proc::Layouter;
use naga::{ScalarKind, TypeInner};

/// One field of a Rust mirror.
pub(crate) struct Field {
    pub name: &'static str,
    pub offset: usize,
    pub size: usize,
    pub ty: &'static str,
}

/// A [`Field`] whose size and type come from the accessor `_get`.
pub(crate) fn field<S, T: 'static>(
    name: &'static str,
    offset: usize,
    _get: impl Fn(&S) -> &T,
) -> Field {
    Field {
        name,
        offset,
        size: size_of::<T>(),
        ty: std::any::type_name::<T>(),
    }
}

/// Checks the Rust struct `rust` (`size` bytes, with `fields`) against the
/// struct `wgsl` of `shader`; panics with what differs.
pub(crate) fn check(rust: &str, size: usize, fields: &[Field], shader: &Shader, wgsl: &str) {
    let what = format!("{rust} vs {wgsl} in {}.wgsl", shader.name);
    let module = naga::front::wgsl::parse_str(shader.source)
        .unwrap_or_else(|e| panic!("{what}: {}", e.emit_to_string(shader.source)));
    let mut layouter = Layouter::default();
    layouter
        .update(module.to_ctx())
        .unwrap_or_else(|e| panic!("{what}: layout: {e}"));
    let (members, span) = module
        .types
        .iter()
        .find_map(|(_, t)| match &t.inner {
            TypeInner::Struct { members, span } if t.name.as_deref() == Some(wgsl) => {
                Some((members, *span))
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("{what}: no struct {wgsl} in the shader"));

    let listed: usize = fields.iter().map(|f| f.size).sum();
    assert_eq!(
        listed, size,
        "{what}: the listed fields cover {listed} of the mirror's {size} bytes: list every field"
    );
    assert_eq!(size, span as usize, "{what}: size (Rust) vs span (WGSL)");
    let named = |n: &str| !n.starts_with('_');
    for f in fields.iter().filter(|f| named(f.name)) {
        let m = members
            .iter()
            .find(|m| m.name.as_deref() == Some(f.name))
            .unwrap_or_else(|| panic!("{what}: the WGSL struct has no member {}", f.name));
        let wgsl_size = layouter[m.ty].size as usize;
        let wgsl_ty = type_name(&module.types[m.ty].inner, &module);
        assert_eq!(
            (f.offset, f.size, f.ty),
            (m.offset as usize, wgsl_size, wgsl_ty.as_str()),
            "{what}: member {} (offset, size, type): Rust left, WGSL right",
            f.name
        );
    }
    for m in members {
        let name = m.name.as_deref().unwrap_or("");
        assert!(
            !named(name) || fields.iter().any(|f| f.name == name),
            "{what}: the Rust mirror has no field {name}"
        );
    }
}

/// The Rust spelling of a WGSL type, as `std::any::type_name` gives it.
fn type_name(inner: &TypeInner, module: &naga::Module) -> String {
    let scalar = |s: naga::Scalar| {
        let prefix = match s.kind {
            ScalarKind::Uint => "u",
            ScalarKind::Sint => "i",
            ScalarKind::Float => "f",
            other => return format!("{other:?}"),
        };
        format!("{prefix}{}", 8 * s.width)
    };
    match inner {
        TypeInner::Scalar(s) => scalar(*s),
        TypeInner::Vector { size, scalar: s } => format!("[{}; {}]", scalar(*s), *size as u32),
        TypeInner::Array {
            base,
            size: naga::ArraySize::Constant(n),
            ..
        } => format!("[{}; {n}]", type_name(&module.types[*base].inner, module)),
        other => format!("{other:?}"),
    }
}

/// Checks the Rust mirror `$rust` against the WGSL struct `$wgsl` of
/// `$shader`; list every field of the mirror, padding included.
macro_rules! check_mirror {
    ($rust:ty, $shader:expr, $wgsl:literal; $($field:ident),+ $(,)?) => {
        $crate::kernels::mirror::check(
            stringify!($rust),
            ::std::mem::size_of::<$rust>(),
            &[$($crate::kernels::mirror::field(
                stringify!($field),
                ::std::mem::offset_of!($rust, $field),
                |s: &$rust| &s.$field,
            )),+],
            $shader,
            $wgsl,
        )
    };
}
pub(crate) use check_mirror;

/// Every `#[repr(C)]` struct in `src/` mirrors a WGSL struct; each needs a
/// check. Counts both in the sources.
#[test]
fn every_repr_c_struct_is_checked() {
    fn walk(dir: &std::path::Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).expect("src/ is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("a source file");
                out.push((path.display().to_string(), text));
            }
        }
    }
    let mut sources = Vec::new();
    walk(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut sources,
    );
    let count = |needle: &str, whole_line: bool| -> usize {
        sources
            .iter()
            .map(|(_, text)| {
                text.lines()
                    .filter(|l| {
                        let l = l.trim();
                        if whole_line {
                            l == needle
                        } else {
                            l.contains(needle)
                        }
                    })
                    .count()
            })
            .sum()
    };
    let mirrors = count("#[repr(C)]", true);
    let checks = count(concat!("check_mirror", "!("), false);
    assert!(mirrors > 0, "no #[repr(C)] struct found under src/");
    assert_eq!(
        mirrors, checks,
        "{mirrors} #[repr(C)] structs in src/ but {checks} check_mirror invocations"
    );
}
