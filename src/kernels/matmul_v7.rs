//! Matmul v7: the template `shaders/matmul_v7.wgsl` instantiated once per
//! tile candidate ([`V7Tile`], [`TileShape`]), with the k loop of a stage unrolled, the
//! accumulators as named vec4 registers and every multiply-add an explicit
//! `fma`, so that the compiler (naga, then the driver's) sees straight-line
//! code with constant workgroup offsets. [`super::matmul::Matmul`] launches
//! it like every other version ([`super::MatmulKernel::V7`]), the tuner
//! times each candidate that fits the device, and the tests check each
//! against the CPU twin.
//!
//! The module is `matmul.wgsl` + `activation_grad.wgsl` +
//! `matmul_vec4.wgsl` (v6's, whose vec4 bindings v7 shares) + one generated
//! copy of the template per candidate, built once per process
//! ([`MATMUL_V7`]).

use std::sync::LazyLock;

use crate::gpu::Shader;

/// One v7 candidate: an index into [`TileShape::CANDIDATES`], so that a
/// [`super::MatmulKernel`] (and every launcher holding one) stays a few
/// bytes. Only the candidates exist: each has its entry point in
/// [`MATMUL_V7`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct V7Tile(u8);

impl V7Tile {
    /// [`TileShape::T128_K16`].
    pub const T128_K16: V7Tile = V7Tile(0);
    /// [`TileShape::T128_K8`].
    pub const T128_K8: V7Tile = V7Tile(1);
    /// [`TileShape::T64_K16`].
    pub const T64_K16: V7Tile = V7Tile(2);
    /// Every candidate, in the order of [`super::MatmulKernel::ALL`].
    pub const CANDIDATES: [V7Tile; 3] = [V7Tile::T128_K16, V7Tile::T128_K8, V7Tile::T64_K16];

    /// Its sizes.
    pub fn shape(self) -> TileShape {
        TileShape::CANDIDATES[usize::from(self.0)]
    }

    /// The version's name in tables and the tuner's records.
    pub fn name(self) -> &'static str {
        self.shape().name
    }

    /// Its entry point in [`MATMUL_V7`].
    pub fn entry(self) -> &'static str {
        self.shape().entry
    }
}

/// One tile shape of v7: a workgroup computes a `bm`×`bn` tile of C in
/// stages of `bk` k, each of its `(bn/tn)·(bm/tm)` threads `tm`×`tn`
/// outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TileShape {
    /// The version's name in tables and the tuner's records.
    pub name: &'static str,
    /// Its entry point in [`MATMUL_V7`].
    pub entry: &'static str,
    pub bm: usize,
    pub bn: usize,
    pub tm: usize,
    pub tn: usize,
    pub bk: usize,
}

impl TileShape {
    /// 128×128 tiles, 8×8 per thread, 16 k a stage: 32 KiB of tiles, past
    /// WebGPU's default 16 KiB. The device asks for the adapter's real
    /// limits (`Gpu::new`), so this runs where the adapter offers 32 KiB
    /// (lavapipe, NVIDIA's 48 KiB, most desktop GPUs); elsewhere the
    /// pipeline is refused with a `TooLarge` error and the tuner times the
    /// 16 KiB candidates instead.
    pub const T128_K16: TileShape = TileShape {
        name: "v7_128x128_8x8_k16",
        entry: "matmul_v7_128x128_8x8_k16",
        bm: 128,
        bn: 128,
        tm: 8,
        tn: 8,
        bk: 16,
    };
    /// The same tile in stages of 8 k: 16 KiB, within WebGPU's default.
    pub const T128_K8: TileShape = TileShape {
        name: "v7_128x128_8x8_k8",
        entry: "matmul_v7_128x128_8x8_k8",
        bm: 128,
        bn: 128,
        tm: 8,
        tn: 8,
        bk: 8,
    };
    /// 64×64 tiles, 4×4 per thread, 16 k a stage: 16 KiB, four times the
    /// workgroups of the 128 tiles for the mid-sized and skinny products.
    pub const T64_K16: TileShape = TileShape {
        name: "v7_64x64_4x4_k16",
        entry: "matmul_v7_64x64_4x4_k16",
        bm: 64,
        bn: 64,
        tm: 4,
        tn: 4,
        bk: 16,
    };

    /// Every candidate, in the order of [`super::MatmulKernel::ALL`].
    pub const CANDIDATES: [TileShape; 3] =
        [TileShape::T128_K16, TileShape::T128_K8, TileShape::T64_K16];

    /// Threads per workgroup along (columns, rows).
    pub fn workgroup(self) -> (usize, usize) {
        (self.bn / self.tn, self.bm / self.tm)
    }

    /// Bytes of workgroup memory: two buffers of `bk` k-rows per operand.
    pub fn workgroup_bytes(self) -> u32 {
        (2 * self.bk * (self.bm + self.bn) * 4) as u32
    }

    /// The template's `$NAME`: the part of the names after `v7_`.
    fn suffix(self) -> String {
        format!(
            "{}x{}_{}x{}_k{}",
            self.bm, self.bn, self.tm, self.tn, self.bk
        )
    }

    /// Why this shape cannot be generated, if it cannot: the template
    /// assumes these (each loader covers whole stages, the swizzle stays in
    /// its row, a warp's stores spread over the 8 bank groups).
    fn check(self) -> Result<(), String> {
        let (wx, wy) = self.workgroup();
        let threads = wx * wy;
        let ok = self.tm.is_multiple_of(4)
            && self.tn.is_multiple_of(4)
            && self.bm.is_multiple_of(8 * self.tm)
            && self.bn.is_multiple_of(8 * self.tn)
            && matches!(self.bk, 8 | 16 | 32)
            && threads <= 256
            && (self.bm * self.bk / 4).is_multiple_of(threads)
            && (self.bn * self.bk / 4).is_multiple_of(threads)
            && self.name == format!("v7_{}", self.suffix())
            && self.entry == format!("matmul_v7_{}", self.suffix());
        if ok {
            Ok(())
        } else {
            Err(format!("{self:?} is not a shape the v7 template supports"))
        }
    }
}

const TEMPLATE: &str = include_str!("../../shaders/matmul_v7.wgsl");

/// The store of one accumulator (4 columns of one row), shared by the
/// candidates: written out rather than a loop over `v[j]`.
const STORE4: &str = "
// v7's store of 4 consecutive columns of one row, each through `store`
// (epilogue, ones column) and only where it lies inside C.
fn v7_store4(bz: u32, row: u32, col: u32, v: vec4<f32>) {
    if (row >= p.m) {
        return;
    }
    let cols = n_out();
    if (col < cols) {
        store(bz, row, col, v.x);
    }
    if (col + 1u < cols) {
        store(bz, row, col + 1u, v.y);
    }
    if (col + 2u < cols) {
        store(bz, row, col + 2u, v.z);
    }
    if (col + 3u < cols) {
        store(bz, row, col + 3u, v.w);
    }
}
";

/// The WGSL of one candidate: the template with its blocks generated and
/// its sizes filled in.
pub fn wgsl_v7(tile: TileShape) -> String {
    if let Err(e) = tile.check() {
        panic!("{e}");
    }
    let (wx, wy) = tile.workgroup();
    let threads = wx * wy;
    let (sa, sb) = (tile.bm / 4, tile.bn / 4);
    let (loads_a, loads_b) = (sa * tile.bk / threads, sb * tile.bk / threads);
    let swg = 32 / tile.bk;
    let lanes = ['x', 'y', 'z', 'w'];
    let (groups_a, groups_b) = (tile.tm / 4, tile.tn / 4);
    let mut slots = String::new();
    for g in 0..groups_a {
        slots += &format!("    let qa{g} = {}u + lid.y;\n", g * wy);
    }
    for h in 0..groups_b {
        slots += &format!("    let qb{h} = {}u + lid.x;\n", h * wx);
    }
    let mut accs = String::new();
    for i in 0..tile.tm {
        for h in 0..groups_b {
            accs += &format!("    var acc_{i}_{h} = vec4<f32>(0.0);\n");
        }
    }
    let mut first = String::new();
    let mut fetch = String::new();
    let mut stash = String::new();
    for (op, n, base, edge) in [
        ("a", loads_a, "a_base", "tile_row"),
        ("b", loads_b, "b_base", "tile_col"),
    ] {
        for i in 0..n {
            let e = format!("t + {}u", i * threads);
            first += &format!("    var r{op}{i} = v7_fetch_{op}_$NAME({base}, {edge}, 0u, {e});\n");
            fetch +=
                &format!("            r{op}{i} = v7_fetch_{op}_$NAME({base}, {edge}, k0, {e});\n");
            stash += &format!(
                "            v7_stash_{op}_$NAME($BUF_{}u - cur_{op}, {e}, r{op}{i});\n",
                op.to_uppercase()
            );
        }
    }
    for (op, n) in [("a", loads_a), ("b", loads_b)] {
        for i in 0..n {
            first += &format!(
                "    v7_stash_{op}_$NAME(0u, t + {}u, r{op}{i});\n",
                i * threads
            );
        }
    }
    let mut products = String::new();
    for kk in 0..tile.bk {
        let sw = ((kk / 4) * swg) & 7;
        products += "        {\n";
        for g in 0..groups_a {
            products += &format!(
                "            let a{g} = v7_a_$NAME[cur_a + {}u + (qa{g} ^ {sw}u)];\n",
                kk * sa
            );
        }
        for h in 0..groups_b {
            products += &format!(
                "            let b{h} = v7_b_$NAME[cur_b + {}u + (qb{h} ^ {sw}u)];\n",
                kk * sb
            );
        }
        for g in 0..groups_a {
            for (l, lane) in lanes.iter().enumerate() {
                let i = 4 * g + l;
                for h in 0..groups_b {
                    products += &format!(
                        "            acc_{i}_{h} = fma(vec4<f32>(a{g}.{lane}), b{h}, acc_{i}_{h});\n"
                    );
                }
            }
        }
        products += "        }\n";
    }
    let mut stores = String::new();
    for g in 0..groups_a {
        for l in 0..4 {
            let i = 4 * g + l;
            for h in 0..groups_b {
                stores += &format!(
                    "    v7_store4(bz, tile_row + qa{g} * 4u + {l}u, tile_col + qb{h} * 4u, acc_{i}_{h});\n"
                );
            }
        }
    }
    let mut out = TEMPLATE.to_string();
    for (block, text) in [
        ("//$SLOTS\n", slots),
        ("//$ACCUMULATORS\n", accs),
        ("//$FIRST_STAGE\n", first),
        ("//$FETCH\n", fetch),
        ("//$PRODUCTS\n", products),
        ("//$STASH\n", stash),
        ("//$STORES\n", stores),
    ] {
        assert!(out.contains(block), "the template lost its {block} block");
        out = out.replace(block, &text);
    }
    for (token, value) in [
        ("$NAME", tile.suffix()),
        ("$A_SLOTS", (2 * tile.bk * sa).to_string()),
        ("$B_SLOTS", (2 * tile.bk * sb).to_string()),
        ("$BUF_A", (tile.bk * sa).to_string()),
        ("$BUF_B", (tile.bk * sb).to_string()),
        ("$BM", tile.bm.to_string()),
        ("$BN", tile.bn.to_string()),
        ("$BK", tile.bk.to_string()),
        ("$TM", tile.tm.to_string()),
        ("$TN", tile.tn.to_string()),
        ("$WX", wx.to_string()),
        ("$WY", wy.to_string()),
        ("$SA", sa.to_string()),
        ("$SB", sb.to_string()),
        ("$KQ", (tile.bk / 4).to_string()),
        ("$SWG", swg.to_string()),
    ] {
        out = out.replace(token, &value);
    }
    out
}

/// The whole `matmul_v7` module's source: v6's module, the shared store,
/// then every candidate.
pub fn module_source() -> String {
    let mut source = super::matmul::MATMUL_VEC4.source.to_string();
    source.push_str(STORE4);
    for tile in TileShape::CANDIDATES {
        source.push_str(&wgsl_v7(tile));
    }
    source
}

/// The module of every v7 candidate, generated on first use and kept for
/// the process (a pipeline's key holds a `&'static Shader`). Its bindings
/// are v6's: A and B a second time as vec4s (placeholders where an operand
/// is read as scalars).
pub static MATMUL_V7: LazyLock<Shader> = LazyLock::new(|| {
    let memory: Vec<(&'static str, u32)> = TileShape::CANDIDATES
        .iter()
        .map(|t| (t.entry, t.workgroup_bytes()))
        .collect();
    Shader {
        name: "matmul_v7",
        source: Box::leak(module_source().into_boxed_str()),
        bindings: super::matmul::MATMUL_VEC4.bindings,
        workgroup_memory: Box::leak(memory.into_boxed_slice()),
        trusted: true,
    }
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_candidate_is_a_shape_the_template_supports() {
        for tile in TileShape::CANDIDATES {
            tile.check().unwrap();
        }
        let odd = TileShape {
            bk: 12,
            ..TileShape::T128_K8
        };
        assert!(odd.check().is_err(), "BK = 12 breaks the swizzle");
    }

    /// Every placeholder is filled, the k loop is unrolled (no loop over
    /// kk, one `fma` per accumulator and k), and there is no private array.
    #[test]
    fn generated_code_is_straight_line_with_named_accumulators() {
        for tile in TileShape::CANDIDATES {
            let src = wgsl_v7(tile);
            assert!(!src.contains('$'), "{}: a placeholder is left", tile.name);
            let fmas = src.matches("= fma(").count();
            assert_eq!(fmas, tile.bk * tile.tm * tile.tn / 4, "{}", tile.name);
            assert!(!src.contains("array<f32,"), "{}", tile.name);
            assert!(!src.contains("var<private>"), "{}", tile.name);
            assert!(
                !src.contains("for (var kk"),
                "{}: a k loop is left",
                tile.name
            );
        }
    }

    /// The swizzle keeps each kk row's slots a permutation of the row, so
    /// every slot is written once per stage and read where it was written.
    #[test]
    fn the_swizzle_permutes_each_row() {
        for tile in TileShape::CANDIDATES {
            let swg = 32 / tile.bk;
            for sa in [tile.bm / 4, tile.bn / 4] {
                for kk in 0..tile.bk {
                    let sw = ((kk / 4) * swg) & 7;
                    let mut seen = vec![false; sa];
                    for q in 0..sa {
                        let s = q ^ sw;
                        assert!(s < sa && !seen[s], "{} kk {kk} q {q}", tile.name);
                        seen[s] = true;
                    }
                }
            }
        }
    }

    /// The untransposed stores of one warp (32 consecutive threads: 128/BK
    /// rows × BK/4 k-quads, one kk per quad at a time) land in 8 different
    /// 16-byte bank groups: no two threads of the warp share a bank.
    #[test]
    fn a_warps_k_major_stores_are_conflict_free() {
        for tile in TileShape::CANDIDATES {
            let (kq, swg, sa) = (tile.bk / 4, 32 / tile.bk, tile.bm / 4);
            for j in 0..4 {
                let mut banks = std::collections::BTreeSet::new();
                for e in 0..32 {
                    let (r, kk) = (e / kq, 4 * (e % kq) + j);
                    let sw = ((kk / 4) * swg) & 7;
                    let word = (kk * sa + ((r / 4) ^ sw)) * 4 + r % 4;
                    banks.insert(word % 32);
                }
                assert_eq!(banks.len(), 32, "{} lane {j}", tile.name);
            }
        }
    }
}
