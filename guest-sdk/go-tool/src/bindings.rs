//! The Go SDK's canonical-ABI glue, generated from the WIT contract.
//!
//! For one world, [`bindings`] writes the Go package `wit` (three files): the
//! WIT types as Go types, a typed Go function per import that lowers its
//! arguments into linear memory or flat core values, calls the host and lifts
//! the result, and a `//go:wasmexport` trampoline per export that lifts the
//! host's arguments, calls the Go function the SDK installed in `Exports`
//! and lowers its result. Sizes, alignments and flattening come from
//! `wit-parser` (`SizeAlign`, `push_flat`), so the glue follows the contract
//! by regenerating it.
//!
//! Flat values travel as raw bits in `uint64`s, which makes the canonical
//! ABI's joins of variant payloads (an `f32` case sharing an `i32` slot, an
//! `i32` sharing an `i64` one) plain truncations. Values the host allocates
//! (`cabi_realloc`) are Go memory, kept reachable until they are lifted;
//! strings and byte lists are lifted without copying, pointing into them.
//! Resources, futures, streams, maps and fixed-length lists are not used by
//! the contract and are refused with an error naming the type.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result, bail};
use wit_parser::abi::{AbiVariant, FlatTypes, WasmType};
use wit_parser::{
    Function, FunctionKind, Int, Resolve, SizeAlign, Type, TypeDefKind, TypeId, WorldId, WorldItem,
    WorldKey,
};

/// The generated package: file name and contents, in order.
pub struct Bindings {
    /// `(file name, Go source)`: `bindings.go` (portable), `abi_wasip1.go`
    /// (the host's imports and the exports, for the plugin build) and
    /// `abi_other.go` (stand-ins that panic, so the SDK builds and tests
    /// natively).
    pub files: Vec<(&'static str, String)>,
}

/// Load the contract in `wit_dir` and generate the glue for its `world`.
///
/// # Errors
/// If the WIT does not parse, has no such world, or uses a type the
/// generator does not support.
pub fn bindings(wit_dir: Option<&Path>, world: &str) -> Result<Bindings> {
    let (resolve, world) = load(wit_dir, world)?;
    Generator::new(&resolve, world).run()
}

/// The contract this tool was built with (`wit/plugin.wit`), used when no
/// WIT directory is named.
pub const CONTRACT: &str = include_str!("../../../wit/plugin.wit");

/// Parse the WIT package in `wit_dir` (or the built-in contract) and select
/// `world` in it.
///
/// # Errors
/// If the directory does not hold a WIT package with that world.
pub fn load(wit_dir: Option<&Path>, world: &str) -> Result<(Resolve, WorldId)> {
    let mut resolve = Resolve::default();
    let (package, source) = match wit_dir {
        Some(dir) => (
            resolve
                .push_dir(dir)
                .with_context(|| format!("reading the WIT contract in {}", dir.display()))?
                .0,
            dir.display().to_string(),
        ),
        None => (
            resolve
                .push_str("plugin.wit", CONTRACT)
                .context("reading the built-in contract")?,
            "the built-in contract".to_string(),
        ),
    };
    let world = resolve
        .select_world(&[package], Some(world))
        .with_context(|| format!("selecting world `{world}` in {source}"))?;
    Ok((resolve, world))
}

/// The flat core types of a type or a parameter list, as wit-parser
/// computes them. Wasm32 only: pointers and lengths are `i32`.
fn flat(resolve: &Resolve, types: &[&Type]) -> Option<Vec<WasmType>> {
    let mut storage = [WasmType::I32; 64];
    let mut flat = FlatTypes::new(&mut storage);
    for ty in types {
        if !resolve.push_flat(ty, &mut flat) {
            return None;
        }
    }
    Some(flat.to_vec())
}

/// The Go type of a core wasm value in a `go:wasmimport`/`go:wasmexport`
/// signature.
fn core_go(ty: WasmType) -> &'static str {
    match ty {
        WasmType::I32 | WasmType::Pointer | WasmType::Length => "uint32",
        WasmType::I64 | WasmType::PointerOrI64 => "uint64",
        WasmType::F32 => "float32",
        WasmType::F64 => "float64",
    }
}

/// A core value of type `ty` named `v`, as raw bits in a `uint64`.
fn core_to_bits(ty: WasmType, v: &str) -> String {
    match ty {
        WasmType::I32 | WasmType::Pointer | WasmType::Length => format!("uint64({v})"),
        WasmType::I64 | WasmType::PointerOrI64 => v.to_string(),
        WasmType::F32 => format!("uint64(math.Float32bits({v}))"),
        WasmType::F64 => format!("math.Float64bits({v})"),
    }
}

/// Raw bits `b` as a core value of type `ty`.
fn bits_to_core(ty: WasmType, b: &str) -> String {
    match ty {
        WasmType::I32 | WasmType::Pointer | WasmType::Length => format!("uint32({b})"),
        WasmType::I64 | WasmType::PointerOrI64 => b.to_string(),
        WasmType::F32 => format!("math.Float32frombits(uint32({b}))"),
        WasmType::F64 => format!("math.Float64frombits({b})"),
    }
}

/// `kebab-name` as `KebabName`.
fn camel(name: &str) -> String {
    name.split(['-', '_', '.'])
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}

fn int_size(int: Int) -> usize {
    match int {
        Int::U8 => 1,
        Int::U16 => 2,
        Int::U32 => 4,
        Int::U64 => 8,
    }
}

fn int_go(int: Int) -> &'static str {
    match int {
        Int::U8 => "uint8",
        Int::U16 => "uint16",
        Int::U32 => "uint32",
        Int::U64 => "uint64",
    }
}

/// The cases of a variant-like type: (Go field, payload type), in order.
type Cases = Vec<(String, Option<Type>)>;

/// The kinds of helper function generated per type.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Helper {
    /// `liftM_x(a uint32) T`: from linear memory at `a`.
    LiftMem,
    /// `lowerM_x(a uint32, v T, k *keep)`: into linear memory at `a`.
    LowerMem,
    /// `liftF_x(f *flatReader) T`: from flat values.
    LiftFlat,
    /// `lowerF_x(f *flatWriter, v T, k *keep)`: into flat values.
    LowerFlat,
}

struct Generator<'a> {
    resolve: &'a Resolve,
    world: WorldId,
    sizes: SizeAlign,
    /// Go names of the named types, by type.
    names: BTreeMap<TypeId, String>,
    /// Helpers still to generate, and those generated (by mangled name).
    pending: Vec<(Helper, Type)>,
    done: BTreeSet<(Helper, String)>,
    helpers: String,
    /// Errors found while generating (an unsupported type).
    errors: Vec<String>,
}

impl<'a> Generator<'a> {
    fn new(resolve: &'a Resolve, world: WorldId) -> Self {
        let mut sizes = SizeAlign::default();
        sizes.fill(resolve);
        Self {
            resolve,
            world,
            sizes,
            names: BTreeMap::new(),
            pending: Vec::new(),
            done: BTreeSet::new(),
            helpers: String::new(),
            errors: Vec::new(),
        }
    }

    fn size(&self, ty: &Type) -> usize {
        self.sizes.size(ty).size_wasm32()
    }

    fn align(&self, ty: &Type) -> usize {
        self.sizes.align(ty).align_wasm32()
    }

    /// The typedef behind aliases (`use` and `type x = y`).
    fn peel(&self, ty: &Type) -> Type {
        let mut ty = *ty;
        while let Type::Id(id) = ty {
            match &self.resolve.types[id].kind {
                TypeDefKind::Type(inner) => ty = *inner,
                _ => break,
            }
        }
        ty
    }

    fn package_label(&self) -> String {
        let world = &self.resolve.worlds[self.world];
        let package = world
            .package
            .map(|p| self.resolve.packages[p].name.to_string())
            .unwrap_or_default();
        format!("{package} (world {})", world.name)
    }

    /// Name every named type the world reaches, Go-style, with the
    /// interface's name in front only where two interfaces use one name.
    fn name_types(&mut self) {
        let mut ids = Vec::new();
        for (id, def) in self.resolve.types.iter() {
            if def.name.is_none() || matches!(def.kind, TypeDefKind::Type(_)) {
                continue;
            }
            ids.push(id);
        }
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for id in &ids {
            let name = camel(self.resolve.types[*id].name.as_deref().unwrap_or_default());
            *counts.entry(name).or_default() += 1;
        }
        for id in ids {
            let def = &self.resolve.types[id];
            let base = camel(def.name.as_deref().unwrap_or_default());
            let name = if counts.get(&base).copied().unwrap_or(0) > 1 {
                let owner = match def.owner {
                    wit_parser::TypeOwner::Interface(i) => camel(
                        self.resolve.interfaces[i]
                            .name
                            .as_deref()
                            .unwrap_or_default(),
                    ),
                    wit_parser::TypeOwner::World(w) => camel(&self.resolve.worlds[w].name),
                    wit_parser::TypeOwner::None => String::new(),
                };
                format!("{owner}{base}")
            } else {
                base
            };
            self.names.insert(id, name);
        }
    }

    /// The Go type of a WIT type.
    fn go_type(&mut self, ty: &Type) -> String {
        match self.peel(ty) {
            Type::Bool => "bool".into(),
            Type::U8 => "uint8".into(),
            Type::U16 => "uint16".into(),
            Type::U32 => "uint32".into(),
            Type::U64 => "uint64".into(),
            Type::S8 => "int8".into(),
            Type::S16 => "int16".into(),
            Type::S32 => "int32".into(),
            Type::S64 => "int64".into(),
            Type::F32 => "float32".into(),
            Type::F64 => "float64".into(),
            Type::Char => "rune".into(),
            Type::String => "string".into(),
            Type::ErrorContext => {
                self.errors.push("error-context is not supported".into());
                "struct{}".into()
            }
            Type::Id(id) => {
                if let Some(name) = self.names.get(&id) {
                    return name.clone();
                }
                match self.resolve.types[id].kind.clone() {
                    TypeDefKind::List(t) => format!("[]{}", self.go_type(&t)),
                    TypeDefKind::Option(t) => format!("Option[{}]", self.go_type(&t)),
                    TypeDefKind::Result(r) => {
                        let ok = r.ok.map_or("Unit".into(), |t| self.go_type(&t));
                        let err = r.err.map_or("Unit".into(), |t| self.go_type(&t));
                        format!("Result[{ok}, {err}]")
                    }
                    TypeDefKind::Tuple(t) => {
                        if t.types.is_empty() || t.types.len() > 4 {
                            self.errors.push(format!(
                                "a tuple of {} types is not supported (1 to 4)",
                                t.types.len()
                            ));
                        }
                        let parts: Vec<String> = t.types.iter().map(|t| self.go_type(t)).collect();
                        format!("Tuple{}[{}]", parts.len(), parts.join(", "))
                    }
                    kind => {
                        self.errors
                            .push(format!("{} types are not supported", kind.as_str()));
                        "struct{}".into()
                    }
                }
            }
        }
    }

    /// A name for a type, unique among the types, for helper functions.
    fn mangle(&mut self, ty: &Type) -> String {
        match self.peel(ty) {
            Type::Id(id) => {
                if let Some(name) = self.names.get(&id) {
                    return name.clone();
                }
                match self.resolve.types[id].kind.clone() {
                    TypeDefKind::List(t) => format!("list_{}", self.mangle(&t)),
                    TypeDefKind::Option(t) => format!("opt_{}", self.mangle(&t)),
                    TypeDefKind::Result(r) => {
                        let ok = r.ok.map_or("unit".into(), |t| self.mangle(&t));
                        let err = r.err.map_or("unit".into(), |t| self.mangle(&t));
                        format!("res_{ok}_{err}")
                    }
                    TypeDefKind::Tuple(t) => {
                        let parts: Vec<String> = t.types.iter().map(|t| self.mangle(t)).collect();
                        format!("tup_{}", parts.join("_"))
                    }
                    kind => kind.as_str().to_string(),
                }
            }
            other => self.go_type(&other),
        }
    }

    /// The name of the helper `kind` for `ty`, queued for generation.
    fn helper(&mut self, kind: Helper, ty: &Type) -> String {
        let mangled = self.mangle(ty);
        if self.done.insert((kind, mangled.clone())) {
            self.pending.push((kind, *ty));
        }
        let prefix = match kind {
            Helper::LiftMem => "liftM",
            Helper::LowerMem => "lowerM",
            Helper::LiftFlat => "liftF",
            Helper::LowerFlat => "lowerF",
        };
        format!("{prefix}_{mangled}")
    }

    /// Whether lifting `ty` from the host makes it call `cabi_realloc`: it
    /// holds a string or a list.
    fn allocates(&self, ty: &Type) -> bool {
        match self.peel(ty) {
            Type::String => true,
            Type::Id(id) => match &self.resolve.types[id].kind {
                TypeDefKind::List(_) | TypeDefKind::Map(..) => true,
                TypeDefKind::Record(r) => r.fields.iter().any(|f| self.allocates(&f.ty)),
                TypeDefKind::Tuple(t) => t.types.iter().any(|t| self.allocates(t)),
                TypeDefKind::Variant(v) => v
                    .cases
                    .iter()
                    .any(|c| c.ty.as_ref().is_some_and(|t| self.allocates(t))),
                TypeDefKind::Option(t) => self.allocates(t),
                TypeDefKind::Result(r) => {
                    r.ok.as_ref().is_some_and(|t| self.allocates(t))
                        || r.err.as_ref().is_some_and(|t| self.allocates(t))
                }
                TypeDefKind::FixedLengthList(t, _) => self.allocates(t),
                _ => false,
            },
            _ => false,
        }
    }

    fn flat_count(&mut self, ty: &Type) -> usize {
        match flat(self.resolve, &[ty]) {
            Some(f) => f.len(),
            None => {
                self.errors
                    .push("a type flattens to more than 64 values".into());
                0
            }
        }
    }

    fn run(mut self) -> Result<Bindings> {
        self.name_types();
        let label = self.package_label();
        let mut types = String::new();
        let ids: Vec<(TypeId, String)> = self.names.clone().into_iter().collect();
        for (id, name) in ids {
            self.type_decl(id, &name, &mut types);
        }

        let mut imports_typed = String::new();
        let mut imports_raw = String::new();
        let mut imports_stub = String::new();
        let mut exports_typed = String::from("var Exports struct {\n");
        let mut exports_raw = String::new();

        let world = self.resolve.worlds[self.world].clone();
        for (key, item) in &world.imports {
            match item {
                WorldItem::Interface { id, .. } => {
                    let iface = self.resolve.interfaces[*id].clone();
                    let module = self.resolve.name_world_key(key);
                    let prefix = camel(iface.name.as_deref().unwrap_or_default());
                    for func in iface.functions.values() {
                        self.import(
                            &module,
                            &prefix,
                            func,
                            &mut imports_typed,
                            &mut imports_raw,
                            &mut imports_stub,
                        );
                    }
                }
                WorldItem::Function(func) => {
                    self.import(
                        "$root",
                        "",
                        func,
                        &mut imports_typed,
                        &mut imports_raw,
                        &mut imports_stub,
                    );
                }
                WorldItem::Type { .. } => {}
            }
        }
        for (key, item) in &world.exports {
            match item {
                WorldItem::Interface { id, .. } => {
                    let iface = self.resolve.interfaces[*id].clone();
                    let module = self.resolve.name_world_key(key);
                    let prefix = camel(iface.name.as_deref().unwrap_or_default());
                    for func in iface.functions.values() {
                        let name = format!("{module}#{}", func.name);
                        self.export(&name, &prefix, func, &mut exports_typed, &mut exports_raw);
                    }
                }
                WorldItem::Function(func) => {
                    let name = match key {
                        WorldKey::Name(n) => n.clone(),
                        WorldKey::Interface(_) => func.name.clone(),
                    };
                    self.export(&name, "", func, &mut exports_typed, &mut exports_raw);
                }
                WorldItem::Type { .. } => {}
            }
        }
        exports_typed.push_str("}\n");

        while let Some((kind, ty)) = self.pending.pop() {
            self.gen_helper(kind, &ty);
        }
        if !self.errors.is_empty() {
            let mut errors = self.errors.clone();
            errors.sort();
            errors.dedup();
            bail!(
                "the Go bindings cannot be generated for {label}: {}",
                errors.join("; ")
            );
        }

        let header =
            format!("// Code generated by `informant-go bindings` from {label}. DO NOT EDIT.\n\n");
        let mut portable = header.clone();
        portable.push_str(PORTABLE_DOC);
        portable.push_str("package wit\n\nimport (\n\t\"math\"\n\t\"unsafe\"\n)\n\n");
        portable.push_str("var _ = math.Float64bits\n\n");
        portable.push_str(RUNTIME_GO);
        portable.push_str("\n// Types.\n\n");
        portable.push_str(&types);
        portable.push_str("\n// Imports: the host's functions.\n\n");
        portable.push_str(&imports_typed);
        portable.push_str(
            "\n// Exports: the SDK installs a function for each before the host calls it.\n\n",
        );
        portable.push_str(&exports_typed);
        portable.push_str("\n// Lifting and lowering, per type.\n\n");
        portable.push_str(&self.helpers);

        let mut wasip1 = header.clone();
        wasip1.push_str("//go:build wasip1\n\npackage wit\n\nimport (\n\t\"math\"\n\t\"runtime\"\n\t\"runtime/debug\"\n\t\"unsafe\"\n)\n\nvar _ = math.Float64bits\nvar _ unsafe.Pointer\n\n");
        wasip1.push_str(WASIP1_GO);
        wasip1.push_str(&imports_raw);
        wasip1.push_str(&exports_raw);

        let mut other = header;
        other.push_str("//go:build !wasip1\n\npackage wit\n\n");
        other.push_str(OTHER_GO);
        other.push_str(&imports_stub);

        Ok(Bindings {
            files: vec![
                ("bindings.go", portable),
                ("abi_wasip1.go", wasip1),
                ("abi_other.go", other),
            ],
        })
    }

    fn docs(docs: &wit_parser::Docs, indent: &str, out: &mut String) {
        if let Some(text) = &docs.contents {
            for line in text.lines() {
                if line.is_empty() {
                    let _ = writeln!(out, "{indent}//");
                } else {
                    let _ = writeln!(out, "{indent}// {line}");
                }
            }
        }
    }

    fn type_decl(&mut self, id: TypeId, name: &str, out: &mut String) {
        let def = self.resolve.types[id].clone();
        Self::docs(&def.docs, "", out);
        match &def.kind {
            TypeDefKind::Record(r) => {
                let _ = writeln!(out, "type {name} struct {{");
                for field in &r.fields {
                    Self::docs(&field.docs, "\t", out);
                    let ty = self.go_type(&field.ty);
                    let _ = writeln!(out, "\t{} {ty}", camel(&field.name));
                }
                out.push_str("}\n\n");
            }
            TypeDefKind::Enum(e) => {
                let repr = int_go(e.tag());
                let _ = writeln!(out, "type {name} {repr}\n\nconst (");
                for (i, case) in e.cases.iter().enumerate() {
                    Self::docs(&case.docs, "\t", out);
                    let _ = writeln!(out, "\t{name}{} {name} = {i}", camel(&case.name));
                }
                out.push_str(")\n\n");
                let _ = writeln!(
                    out,
                    "// String is the case's WIT name.\nfunc (v {name}) String() string {{\n\tswitch v {{"
                );
                for case in &e.cases {
                    let _ = writeln!(
                        out,
                        "\tcase {name}{}:\n\t\treturn \"{}\"",
                        camel(&case.name),
                        case.name
                    );
                }
                out.push_str("\t}\n\treturn \"\"\n}\n\n");
            }
            TypeDefKind::Flags(f) => {
                let repr = match f.flags.len() {
                    0..=8 => "uint8",
                    9..=16 => "uint16",
                    17..=32 => "uint32",
                    33..=64 => "uint64",
                    _ => {
                        self.errors
                            .push("flags with more than 64 members are not supported".into());
                        "uint64"
                    }
                };
                let _ = writeln!(out, "type {name} {repr}\n\nconst (");
                for (i, flag) in f.flags.iter().enumerate() {
                    Self::docs(&flag.docs, "\t", out);
                    let _ = writeln!(out, "\t{name}{} {name} = 1 << {i}", camel(&flag.name));
                }
                out.push_str(")\n\n");
            }
            TypeDefKind::Variant(v) => {
                let tag = int_go(v.tag());
                let _ = writeln!(
                    out,
                    "type {name} struct {{\n\t// Tag says which case this is; only that case's field is set.\n\tTag {name}Tag"
                );
                for case in &v.cases {
                    if let Some(ty) = &case.ty {
                        let ty = self.go_type(ty);
                        let _ = writeln!(out, "\t{} {ty}", camel(&case.name));
                    }
                }
                out.push_str("}\n\n");
                let _ = writeln!(
                    out,
                    "// {name}Tag names a case of {name}.\ntype {name}Tag {tag}\n\nconst ("
                );
                for (i, case) in v.cases.iter().enumerate() {
                    Self::docs(&case.docs, "\t", out);
                    let _ = writeln!(out, "\t{name}Tag{} {name}Tag = {i}", camel(&case.name));
                }
                out.push_str(")\n\n");
                for case in &v.cases {
                    let c = camel(&case.name);
                    match &case.ty {
                        Some(ty) => {
                            let ty = self.go_type(ty);
                            let _ = writeln!(
                                out,
                                "// {name}{c} is the case {}.\nfunc {name}{c}(v {ty}) {name} {{\n\treturn {name}{{Tag: {name}Tag{c}, {c}: v}}\n}}\n",
                                case.name
                            );
                        }
                        None => {
                            let _ = writeln!(
                                out,
                                "// {name}{c} is the case {}.\nfunc {name}{c}() {name} {{\n\treturn {name}{{Tag: {name}Tag{c}}}\n}}\n",
                                case.name
                            );
                        }
                    }
                }
            }
            TypeDefKind::Resource | TypeDefKind::Handle(_) => {
                self.errors
                    .push(format!("resource `{name}` is not supported"));
            }
            _ => {
                let ty = self.go_type(&Type::Id(id));
                let _ = writeln!(out, "type {name} = {ty}\n");
            }
        }
    }

    /// One import: the typed Go function, its `go:wasmimport` declaration and
    /// the stand-in for other platforms.
    fn import(
        &mut self,
        module: &str,
        prefix: &str,
        func: &Function,
        typed: &mut String,
        raw: &mut String,
        stub: &mut String,
    ) {
        if !matches!(func.kind, FunctionKind::Freestanding) {
            self.errors.push(format!(
                "function `{}`: only freestanding functions are supported",
                func.name
            ));
            return;
        }
        let sig = self.resolve.wasm_signature(AbiVariant::GuestImport, func);
        let go_name = format!("{prefix}{}", camel(&func.name));
        let raw_name = format!("raw{go_name}");
        let params: Vec<String> = func
            .params
            .iter()
            .enumerate()
            .map(|(i, p)| format!("p{i} {}", self.go_type(&p.ty)))
            .collect();
        let result = func.result.map(|t| self.go_type(&t));

        // The raw declaration.
        let core_params: Vec<String> = sig
            .params
            .iter()
            .enumerate()
            .map(|(i, t)| format!("a{i} {}", core_go(*t)))
            .collect();
        let core_result = sig.results.first().map(|t| core_go(*t));
        let _ = writeln!(
            raw,
            "//go:wasmimport {module} {}\nfunc {raw_name}({}){}\n",
            func.name,
            core_params.join(", "),
            core_result.map(|r| format!(" {r}")).unwrap_or_default()
        );
        let _ = writeln!(
            stub,
            "func {raw_name}({}){} {{\n\tpanic(errNotInPlugin)\n}}\n",
            core_params.join(", "),
            core_result.map(|r| format!(" {r}")).unwrap_or_default()
        );

        // The typed wrapper.
        Self::docs(&func.docs, "", typed);
        let _ = writeln!(
            typed,
            "func {go_name}({}){} {{\n\tvar k keep\n\tdefer k.release()",
            params.join(", "),
            result.as_ref().map(|r| format!(" {r}")).unwrap_or_default()
        );
        let mut args: Vec<String> = Vec::new();
        if sig.indirect_params {
            let types: Vec<Type> = func.params.iter().map(|p| p.ty).collect();
            let info = self.sizes.record(types.iter());
            let offsets = self.sizes.field_offsets(types.iter());
            let _ = writeln!(
                typed,
                "\targs := k.alloc({}, {})",
                info.size.size_wasm32(),
                info.align.align_wasm32()
            );
            for (i, (off, ty)) in offsets.iter().enumerate() {
                let lower = self.helper(Helper::LowerMem, ty);
                let _ = writeln!(typed, "\t{lower}(args+{}, p{i}, &k)", off.size_wasm32());
            }
            args.push("args".into());
        } else {
            let _ = writeln!(typed, "\tvar fw flatWriter");
            for (i, p) in func.params.iter().enumerate() {
                let lower = self.helper(Helper::LowerFlat, &p.ty);
                let _ = writeln!(typed, "\t{lower}(&fw, p{i}, &k)");
            }
            let flat_params = &sig.params[..sig.params.len() - usize::from(sig.retptr)];
            for (i, t) in flat_params.iter().enumerate() {
                args.push(bits_to_core(*t, &format!("fw.v[{i}]")));
            }
            if flat_params.is_empty() {
                typed.push_str("\t_ = fw\n");
            }
        }
        if sig.retptr {
            let ty = func.result.unwrap_or(Type::Bool);
            let _ = writeln!(
                typed,
                "\tret := k.alloc({}, {})",
                self.size(&ty),
                self.align(&ty)
            );
            args.push("ret".into());
        }
        let mut call = format!("{raw_name}({})", args.join(", "));
        if func.result.is_some_and(|t| self.allocates(&t)) {
            // The host calls cabi_realloc for the result: no collection
            // may start meanwhile (see gcOff).
            typed.push_str("\tgcOff()\n");
            call = format!("{call}\n\tgcOn()");
        }
        match (&func.result, sig.retptr) {
            (None, _) => {
                let _ = writeln!(typed, "\t{call}\n}}\n");
            }
            (Some(ty), true) => {
                let lift = self.helper(Helper::LiftMem, ty);
                let _ = writeln!(
                    typed,
                    "\t{call}\n\tv := {lift}(ret)\n\treleaseReallocs()\n\treturn v\n}}\n"
                );
            }
            (Some(ty), false) => {
                let lift = self.helper(Helper::LiftFlat, ty);
                let core = sig.results[0];
                let call = call.replacen(&raw_name, &format!("r := {raw_name}"), 1);
                let _ = writeln!(
                    typed,
                    "\t{call}\n\tfr := flatReader{{v: []uint64{{{}}}}}\n\tv := {lift}(&fr)\n\treleaseReallocs()\n\treturn v\n}}\n",
                    core_to_bits(core, "r")
                );
            }
        }
    }

    /// One export: its field in `Exports`, its `go:wasmexport` trampoline
    /// and, when it returns through memory, its post-return function.
    fn export(
        &mut self,
        name: &str,
        prefix: &str,
        func: &Function,
        typed: &mut String,
        raw: &mut String,
    ) {
        if !matches!(func.kind, FunctionKind::Freestanding) {
            self.errors.push(format!(
                "function `{}`: only freestanding functions are supported",
                func.name
            ));
            return;
        }
        let sig = self.resolve.wasm_signature(AbiVariant::GuestExport, func);
        let go_name = format!("{prefix}{}", camel(&func.name));
        let params: Vec<String> = func.params.iter().map(|p| self.go_type(&p.ty)).collect();
        let result = func.result.map(|t| self.go_type(&t));
        Self::docs(&func.docs, "\t", typed);
        let _ = writeln!(
            typed,
            "\t{go_name} func({}){}",
            params.join(", "),
            result.as_ref().map(|r| format!(" {r}")).unwrap_or_default()
        );

        let core_params: Vec<String> = sig
            .params
            .iter()
            .enumerate()
            .map(|(i, t)| format!("a{i} {}", core_go(*t)))
            .collect();
        let core_result = sig.results.first().map(|t| core_go(*t));
        let tramp = format!("export{}", camel(&name.replace(['#', '/', ':', '@'], "-")));
        let _ = writeln!(
            raw,
            "//go:wasmexport {name}\nfunc {tramp}({}){} {{",
            core_params.join(", "),
            core_result.map(|r| format!(" {r}")).unwrap_or_default()
        );
        let _ = writeln!(
            raw,
            "\tif Exports.{go_name} == nil {{\n\t\tpanic(\"informant: the export {name} was called but the SDK installed no function for it\")\n\t}}"
        );
        let mut args = Vec::new();
        if sig.indirect_params {
            let types: Vec<Type> = func.params.iter().map(|p| p.ty).collect();
            let offsets = self.sizes.field_offsets(types.iter());
            for (i, (off, ty)) in offsets.iter().enumerate() {
                let lift = self.helper(Helper::LiftMem, ty);
                let _ = writeln!(raw, "\tp{i} := {lift}(a0+{})", off.size_wasm32());
                args.push(format!("p{i}"));
            }
        } else if !func.params.is_empty() {
            let bits: Vec<String> = sig
                .params
                .iter()
                .enumerate()
                .map(|(i, t)| core_to_bits(*t, &format!("a{i}")))
                .collect();
            let _ = writeln!(
                raw,
                "\tfr := flatReader{{v: []uint64{{{}}}}}",
                bits.join(", ")
            );
            for (i, p) in func.params.iter().enumerate() {
                let lift = self.helper(Helper::LiftFlat, &p.ty);
                let _ = writeln!(raw, "\tp{i} := {lift}(&fr)");
                args.push(format!("p{i}"));
            }
        }
        // The arguments are lifted: what the host allocated for them is
        // referenced from the Go values now, or garbage. The plugin's code
        // runs with the collector on.
        raw.push_str("\treleaseReallocs()\n\tgcOn()\n");
        let call = format!("Exports.{go_name}({})", args.join(", "));
        match (&func.result, sig.retptr) {
            (None, _) => {
                let _ = writeln!(raw, "\t{call}\n\tgcOff()\n}}\n");
            }
            (Some(ty), true) => {
                let lower = self.helper(Helper::LowerMem, ty);
                let post_name = format!("cabi_post_{name}");
                let post = format!("post{}", &tramp["export".len()..]);
                let _ = writeln!(
                    raw,
                    "\tv := {call}\n\tk := &exportKeep\n\tk.release()\n\tret := k.alloc({}, {})\n\t{lower}(ret, v, k)\n\tgcOff()\n\treturn ret\n}}\n",
                    self.size(ty),
                    self.align(ty)
                );
                let _ = writeln!(
                    raw,
                    "//go:wasmexport {post_name}\nfunc {post}(uint32) {{\n\texportKeep.release()\n}}\n"
                );
            }
            (Some(ty), false) => {
                let lower = self.helper(Helper::LowerFlat, ty);
                let core = sig.results[0];
                let _ = writeln!(
                    raw,
                    "\tv := {call}\n\tk := &exportKeep\n\tk.release()\n\tvar fw flatWriter\n\t{lower}(&fw, v, k)\n\tgcOff()\n\treturn {}\n}}\n",
                    bits_to_core(core, "fw.v[0]")
                );
            }
        }
    }

    fn gen_helper(&mut self, kind: Helper, ty: &Type) {
        let name = {
            let mangled = self.mangle(ty);
            let prefix = match kind {
                Helper::LiftMem => "liftM",
                Helper::LowerMem => "lowerM",
                Helper::LiftFlat => "liftF",
                Helper::LowerFlat => "lowerF",
            };
            format!("{prefix}_{mangled}")
        };
        let go = self.go_type(ty);
        let mut body = String::new();
        match kind {
            Helper::LiftMem => {
                let _ = writeln!(body, "func {name}(a uint32) {go} {{");
                self.lift_mem(ty, &go, &mut body);
            }
            Helper::LowerMem => {
                let _ = writeln!(body, "func {name}(a uint32, v {go}, k *keep) {{");
                self.lower_mem(ty, &mut body);
            }
            Helper::LiftFlat => {
                let _ = writeln!(body, "func {name}(f *flatReader) {go} {{");
                self.lift_flat(ty, &go, &mut body);
            }
            Helper::LowerFlat => {
                let _ = writeln!(body, "func {name}(f *flatWriter, v {go}, k *keep) {{");
                self.lower_flat(ty, &mut body);
            }
        }
        body.push_str("}\n\n");
        self.helpers.push_str(&body);
    }

    /// Cases of a variant-like type: (Go field, payload type), in order.
    fn cases(&mut self, ty: &Type) -> Option<(Int, Cases)> {
        let Type::Id(id) = self.peel(ty) else {
            return None;
        };
        match self.resolve.types[id].kind.clone() {
            TypeDefKind::Variant(v) => Some((
                v.tag(),
                v.cases.iter().map(|c| (camel(&c.name), c.ty)).collect(),
            )),
            TypeDefKind::Option(t) => Some((
                Int::U8,
                vec![(String::new(), None), ("Value".into(), Some(t))],
            )),
            TypeDefKind::Result(r) => {
                Some((Int::U8, vec![("Ok".into(), r.ok), ("Err".into(), r.err)]))
            }
            _ => None,
        }
    }

    /// Statements that set the variant-like `v` (named `out`) to case `i`.
    fn set_case(
        &mut self,
        ty: &Type,
        go: &str,
        i: usize,
        field: &str,
        value: Option<&str>,
    ) -> String {
        let Type::Id(id) = self.peel(ty) else {
            return String::new();
        };
        let mut s = String::new();
        match &self.resolve.types[id].kind {
            TypeDefKind::Variant(v) => {
                let c = camel(&v.cases[i].name);
                let _ = writeln!(s, "\t\tout.Tag = {go}Tag{c}");
                if let Some(value) = value {
                    let _ = writeln!(s, "\t\tout.{field} = {value}");
                }
            }
            TypeDefKind::Option(_) => {
                if i == 1 {
                    let _ = writeln!(s, "\t\tout.Some = true");
                }
                if let Some(value) = value {
                    let _ = writeln!(s, "\t\tout.Value = {value}");
                }
            }
            TypeDefKind::Result(_) => {
                if i == 1 {
                    let _ = writeln!(s, "\t\tout.IsErr = true");
                }
                if let Some(value) = value {
                    let _ = writeln!(s, "\t\tout.{field} = {value}");
                }
            }
            _ => {}
        }
        s
    }

    /// The expression giving the case index of the variant-like `v`.
    fn case_of(&mut self, ty: &Type) -> String {
        let Type::Id(id) = self.peel(ty) else {
            return "0".into();
        };
        match &self.resolve.types[id].kind {
            TypeDefKind::Variant(_) => "int(v.Tag)".into(),
            TypeDefKind::Option(_) => "boolIndex(v.Some)".into(),
            TypeDefKind::Result(_) => "boolIndex(v.IsErr)".into(),
            _ => "0".into(),
        }
    }

    fn lift_mem(&mut self, ty: &Type, go: &str, out: &mut String) {
        let peeled = self.peel(ty);
        let prim = |load: &str| format!("\treturn {load}\n");
        match peeled {
            Type::Bool => out.push_str(&prim("ld8(a) != 0")),
            Type::U8 => out.push_str(&prim("ld8(a)")),
            Type::S8 => out.push_str(&prim("int8(ld8(a))")),
            Type::U16 => out.push_str(&prim("ld16(a)")),
            Type::S16 => out.push_str(&prim("int16(ld16(a))")),
            Type::U32 => out.push_str(&prim("ld32(a)")),
            Type::S32 => out.push_str(&prim("int32(ld32(a))")),
            Type::Char => out.push_str(&prim("rune(ld32(a))")),
            Type::U64 => out.push_str(&prim("ld64(a)")),
            Type::S64 => out.push_str(&prim("int64(ld64(a))")),
            Type::F32 => out.push_str(&prim("math.Float32frombits(ld32(a))")),
            Type::F64 => out.push_str(&prim("math.Float64frombits(ld64(a))")),
            Type::String => out.push_str(&prim("liftString(ld32(a), ld32(a+4))")),
            Type::ErrorContext => out.push_str("\tpanic(\"unsupported\")\n"),
            Type::Id(id) => {
                let kind = self.resolve.types[id].kind.clone();
                match kind {
                    TypeDefKind::Record(r) => {
                        let types: Vec<Type> = r.fields.iter().map(|f| f.ty).collect();
                        let offsets: Vec<usize> = self
                            .sizes
                            .field_offsets(types.iter())
                            .iter()
                            .map(|(o, _)| o.size_wasm32())
                            .collect();
                        let _ = writeln!(out, "\tvar out {go}");
                        for (field, off) in r.fields.iter().zip(offsets) {
                            let lift = self.helper(Helper::LiftMem, &field.ty);
                            let _ = writeln!(out, "\tout.{} = {lift}(a+{off})", camel(&field.name));
                        }
                        out.push_str("\treturn out\n");
                    }
                    TypeDefKind::Tuple(t) => {
                        let offsets: Vec<usize> = self
                            .sizes
                            .field_offsets(t.types.iter())
                            .iter()
                            .map(|(o, _)| o.size_wasm32())
                            .collect();
                        let _ = writeln!(out, "\tvar out {go}");
                        for (i, (ty, off)) in t.types.iter().zip(offsets).enumerate() {
                            let lift = self.helper(Helper::LiftMem, ty);
                            let _ = writeln!(out, "\tout.F{i} = {lift}(a+{off})");
                        }
                        out.push_str("\treturn out\n");
                    }
                    TypeDefKind::Enum(e) => {
                        let load = match e.tag() {
                            Int::U8 => "ld8(a)",
                            Int::U16 => "ld16(a)",
                            Int::U32 => "ld32(a)",
                            Int::U64 => "ld64(a)",
                        };
                        let _ = writeln!(out, "\treturn {go}({load})");
                    }
                    TypeDefKind::Flags(f) => {
                        let words = f.repr().count();
                        match f.flags.len() {
                            0..=8 => {
                                let _ = writeln!(out, "\treturn {go}(ld8(a))");
                            }
                            9..=16 => {
                                let _ = writeln!(out, "\treturn {go}(ld16(a))");
                            }
                            _ => {
                                let _ = writeln!(out, "\tvar out uint64");
                                for w in 0..words {
                                    let _ = writeln!(
                                        out,
                                        "\tout |= uint64(ld32(a+{})) << {}",
                                        w * 4,
                                        w * 32
                                    );
                                }
                                let _ = writeln!(out, "\treturn {go}(out)");
                            }
                        }
                    }
                    TypeDefKind::List(elem) => {
                        let size = self.size(&elem);
                        if matches!(self.peel(&elem), Type::U8) {
                            out.push_str("\treturn liftBytes(ld32(a), ld32(a+4))\n");
                        } else {
                            let lift = self.helper(Helper::LiftMem, &elem);
                            let _ = writeln!(
                                out,
                                "\tp, n := ld32(a), ld32(a+4)\n\tout := make({go}, n)\n\tfor i := uint32(0); i < n; i++ {{\n\t\tout[i] = {lift}(p + i*{size})\n\t}}\n\treturn out"
                            );
                        }
                    }
                    TypeDefKind::Variant(_) | TypeDefKind::Option(_) | TypeDefKind::Result(_) => {
                        let Some((tag, cases)) = self.cases(ty) else {
                            return;
                        };
                        let case_types: Vec<Option<Type>> = cases.iter().map(|c| c.1).collect();
                        let payload = self
                            .sizes
                            .payload_offset(tag, case_types.iter().map(|t| t.as_ref()))
                            .size_wasm32();
                        let load = match int_size(tag) {
                            1 => "uint32(ld8(a))",
                            2 => "uint32(ld16(a))",
                            _ => "ld32(a)",
                        };
                        let _ = writeln!(out, "\tvar out {go}\n\tswitch {load} {{");
                        for (i, (field, case_ty)) in cases.iter().enumerate() {
                            let _ = writeln!(out, "\tcase {i}:");
                            let value = case_ty.map(|t| {
                                let lift = self.helper(Helper::LiftMem, &t);
                                format!("{lift}(a+{payload})")
                            });
                            let set = self.set_case(ty, go, i, field, value.as_deref());
                            out.push_str(&set);
                        }
                        out.push_str("\tdefault:\n\t\tpanic(\"informant: the host sent an unknown case\")\n\t}\n\treturn out\n");
                    }
                    TypeDefKind::Type(_) => {}
                    kind => {
                        self.errors
                            .push(format!("{} types are not supported", kind.as_str()));
                    }
                }
            }
        }
    }

    fn lower_mem(&mut self, ty: &Type, out: &mut String) {
        match self.peel(ty) {
            Type::Bool => out.push_str("\tst8(a, uint8(boolIndex(v)))\n"),
            Type::U8 => out.push_str("\tst8(a, v)\n"),
            Type::S8 => out.push_str("\tst8(a, uint8(v))\n"),
            Type::U16 => out.push_str("\tst16(a, v)\n"),
            Type::S16 => out.push_str("\tst16(a, uint16(v))\n"),
            Type::U32 => out.push_str("\tst32(a, v)\n"),
            Type::S32 | Type::Char => out.push_str("\tst32(a, uint32(v))\n"),
            Type::U64 => out.push_str("\tst64(a, v)\n"),
            Type::S64 => out.push_str("\tst64(a, uint64(v))\n"),
            Type::F32 => out.push_str("\tst32(a, math.Float32bits(v))\n"),
            Type::F64 => out.push_str("\tst64(a, math.Float64bits(v))\n"),
            Type::String => {
                out.push_str("\tp, n := k.str(v)\n\tst32(a, p)\n\tst32(a+4, n)\n");
            }
            Type::ErrorContext => {}
            Type::Id(id) => {
                let kind = self.resolve.types[id].kind.clone();
                match kind {
                    TypeDefKind::Record(r) => {
                        let types: Vec<Type> = r.fields.iter().map(|f| f.ty).collect();
                        let offsets: Vec<usize> = self
                            .sizes
                            .field_offsets(types.iter())
                            .iter()
                            .map(|(o, _)| o.size_wasm32())
                            .collect();
                        for (field, off) in r.fields.iter().zip(offsets) {
                            let lower = self.helper(Helper::LowerMem, &field.ty);
                            let _ =
                                writeln!(out, "\t{lower}(a+{off}, v.{}, k)", camel(&field.name));
                        }
                    }
                    TypeDefKind::Tuple(t) => {
                        let offsets: Vec<usize> = self
                            .sizes
                            .field_offsets(t.types.iter())
                            .iter()
                            .map(|(o, _)| o.size_wasm32())
                            .collect();
                        for (i, (ty, off)) in t.types.iter().zip(offsets).enumerate() {
                            let lower = self.helper(Helper::LowerMem, ty);
                            let _ = writeln!(out, "\t{lower}(a+{off}, v.F{i}, k)");
                        }
                    }
                    TypeDefKind::Enum(e) => {
                        let store = match e.tag() {
                            Int::U8 => "st8(a, uint8(v))",
                            Int::U16 => "st16(a, uint16(v))",
                            Int::U32 => "st32(a, uint32(v))",
                            Int::U64 => "st64(a, uint64(v))",
                        };
                        let _ = writeln!(out, "\t{store}");
                    }
                    TypeDefKind::Flags(f) => match f.flags.len() {
                        0..=8 => out.push_str("\tst8(a, uint8(v))\n"),
                        9..=16 => out.push_str("\tst16(a, uint16(v))\n"),
                        _ => {
                            for w in 0..f.repr().count() {
                                let _ = writeln!(
                                    out,
                                    "\tst32(a+{}, uint32(uint64(v) >> {}))",
                                    w * 4,
                                    w * 32
                                );
                            }
                        }
                    },
                    TypeDefKind::List(elem) => {
                        let size = self.size(&elem);
                        let align = self.align(&elem);
                        if matches!(self.peel(&elem), Type::U8) {
                            out.push_str("\tp, n := k.bytes(v)\n\tst32(a, p)\n\tst32(a+4, n)\n");
                        } else {
                            let lower = self.helper(Helper::LowerMem, &elem);
                            let _ = writeln!(
                                out,
                                "\tn := uint32(len(v))\n\tp := k.alloc(n*{size}, {align})\n\tfor i := uint32(0); i < n; i++ {{\n\t\t{lower}(p+i*{size}, v[i], k)\n\t}}\n\tst32(a, p)\n\tst32(a+4, n)"
                            );
                        }
                    }
                    TypeDefKind::Variant(_) | TypeDefKind::Option(_) | TypeDefKind::Result(_) => {
                        let Some((tag, cases)) = self.cases(ty) else {
                            return;
                        };
                        let case_types: Vec<Option<Type>> = cases.iter().map(|c| c.1).collect();
                        let payload = self
                            .sizes
                            .payload_offset(tag, case_types.iter().map(|t| t.as_ref()))
                            .size_wasm32();
                        let store = match int_size(tag) {
                            1 => "st8(a, uint8(c))",
                            2 => "st16(a, uint16(c))",
                            _ => "st32(a, uint32(c))",
                        };
                        let case_of = self.case_of(ty);
                        let _ = writeln!(out, "\tc := {case_of}\n\t{store}\n\tswitch c {{");
                        for (i, (field, case_ty)) in cases.iter().enumerate() {
                            if let Some(t) = case_ty {
                                let lower = self.helper(Helper::LowerMem, t);
                                let _ = writeln!(
                                    out,
                                    "\tcase {i}:\n\t\t{lower}(a+{payload}, v.{field}, k)"
                                );
                            }
                        }
                        out.push_str("\t}\n");
                    }
                    TypeDefKind::Type(_) => {}
                    kind => {
                        self.errors
                            .push(format!("{} types are not supported", kind.as_str()));
                    }
                }
            }
        }
    }

    fn lift_flat(&mut self, ty: &Type, go: &str, out: &mut String) {
        let prim = |e: &str| format!("\treturn {e}\n");
        match self.peel(ty) {
            Type::Bool => out.push_str(&prim("uint32(f.next()) != 0")),
            Type::U8 => out.push_str(&prim("uint8(f.next())")),
            Type::S8 => out.push_str(&prim("int8(f.next())")),
            Type::U16 => out.push_str(&prim("uint16(f.next())")),
            Type::S16 => out.push_str(&prim("int16(f.next())")),
            Type::U32 => out.push_str(&prim("uint32(f.next())")),
            Type::S32 => out.push_str(&prim("int32(uint32(f.next()))")),
            Type::Char => out.push_str(&prim("rune(uint32(f.next()))")),
            Type::U64 => out.push_str(&prim("f.next()")),
            Type::S64 => out.push_str(&prim("int64(f.next())")),
            Type::F32 => out.push_str(&prim("math.Float32frombits(uint32(f.next()))")),
            Type::F64 => out.push_str(&prim("math.Float64frombits(f.next())")),
            Type::String => {
                out.push_str("\tp := uint32(f.next())\n\treturn liftString(p, uint32(f.next()))\n");
            }
            Type::ErrorContext => out.push_str("\tpanic(\"unsupported\")\n"),
            Type::Id(id) => {
                let kind = self.resolve.types[id].kind.clone();
                match kind {
                    TypeDefKind::Record(r) => {
                        let _ = writeln!(out, "\tvar out {go}");
                        for field in &r.fields {
                            let lift = self.helper(Helper::LiftFlat, &field.ty);
                            let _ = writeln!(out, "\tout.{} = {lift}(f)", camel(&field.name));
                        }
                        out.push_str("\treturn out\n");
                    }
                    TypeDefKind::Tuple(t) => {
                        let _ = writeln!(out, "\tvar out {go}");
                        for (i, ty) in t.types.iter().enumerate() {
                            let lift = self.helper(Helper::LiftFlat, ty);
                            let _ = writeln!(out, "\tout.F{i} = {lift}(f)");
                        }
                        out.push_str("\treturn out\n");
                    }
                    TypeDefKind::Enum(_) => {
                        let _ = writeln!(out, "\treturn {go}(f.next())");
                    }
                    TypeDefKind::Flags(f) => {
                        let words = f.repr().count();
                        let _ = writeln!(out, "\tvar out uint64");
                        for w in 0..words {
                            let _ =
                                writeln!(out, "\tout |= uint64(uint32(f.next())) << {}", w * 32);
                        }
                        let _ = writeln!(out, "\treturn {go}(out)");
                    }
                    TypeDefKind::List(elem) => {
                        let size = self.size(&elem);
                        if matches!(self.peel(&elem), Type::U8) {
                            out.push_str("\tp := uint32(f.next())\n\treturn liftBytes(p, uint32(f.next()))\n");
                        } else {
                            let lift = self.helper(Helper::LiftMem, &elem);
                            let _ = writeln!(
                                out,
                                "\tp := uint32(f.next())\n\tn := uint32(f.next())\n\tout := make({go}, n)\n\tfor i := uint32(0); i < n; i++ {{\n\t\tout[i] = {lift}(p + i*{size})\n\t}}\n\treturn out"
                            );
                        }
                    }
                    TypeDefKind::Variant(_) | TypeDefKind::Option(_) | TypeDefKind::Result(_) => {
                        let Some((_, cases)) = self.cases(ty) else {
                            return;
                        };
                        let width = self.flat_count(ty).saturating_sub(1);
                        let _ = writeln!(
                            out,
                            "\tvar out {go}\n\tc := uint32(f.next())\n\tstart := f.i\n\tswitch c {{"
                        );
                        for (i, (field, case_ty)) in cases.iter().enumerate() {
                            let _ = writeln!(out, "\tcase {i}:");
                            let value = case_ty.map(|t| {
                                let lift = self.helper(Helper::LiftFlat, &t);
                                format!("{lift}(f)")
                            });
                            let set = self.set_case(ty, go, i, field, value.as_deref());
                            out.push_str(&set);
                        }
                        let _ = writeln!(
                            out,
                            "\tdefault:\n\t\tpanic(\"informant: the host sent an unknown case\")\n\t}}\n\tf.i = start + {width}\n\treturn out"
                        );
                    }
                    TypeDefKind::Type(_) => {}
                    kind => {
                        self.errors
                            .push(format!("{} types are not supported", kind.as_str()));
                    }
                }
            }
        }
    }

    fn lower_flat(&mut self, ty: &Type, out: &mut String) {
        match self.peel(ty) {
            Type::Bool => out.push_str("\tf.push(uint64(boolIndex(v)))\n"),
            Type::U8 | Type::U16 | Type::U32 => out.push_str("\tf.push(uint64(v))\n"),
            Type::S8 | Type::S16 | Type::S32 | Type::Char => {
                out.push_str("\tf.push(uint64(uint32(int32(v))))\n");
            }
            Type::U64 => out.push_str("\tf.push(v)\n"),
            Type::S64 => out.push_str("\tf.push(uint64(v))\n"),
            Type::F32 => out.push_str("\tf.push(uint64(math.Float32bits(v)))\n"),
            Type::F64 => out.push_str("\tf.push(math.Float64bits(v))\n"),
            Type::String => {
                out.push_str("\tp, n := k.str(v)\n\tf.push(uint64(p))\n\tf.push(uint64(n))\n");
            }
            Type::ErrorContext => {}
            Type::Id(id) => {
                let kind = self.resolve.types[id].kind.clone();
                match kind {
                    TypeDefKind::Record(r) => {
                        for field in &r.fields {
                            let lower = self.helper(Helper::LowerFlat, &field.ty);
                            let _ = writeln!(out, "\t{lower}(f, v.{}, k)", camel(&field.name));
                        }
                    }
                    TypeDefKind::Tuple(t) => {
                        for (i, ty) in t.types.iter().enumerate() {
                            let lower = self.helper(Helper::LowerFlat, ty);
                            let _ = writeln!(out, "\t{lower}(f, v.F{i}, k)");
                        }
                    }
                    TypeDefKind::Enum(_) => out.push_str("\tf.push(uint64(v))\n"),
                    TypeDefKind::Flags(f) => {
                        for w in 0..f.repr().count() {
                            let _ =
                                writeln!(out, "\tf.push(uint64(uint32(uint64(v) >> {})))", w * 32);
                        }
                    }
                    TypeDefKind::List(elem) => {
                        let size = self.size(&elem);
                        let align = self.align(&elem);
                        if matches!(self.peel(&elem), Type::U8) {
                            out.push_str(
                                "\tp, n := k.bytes(v)\n\tf.push(uint64(p))\n\tf.push(uint64(n))\n",
                            );
                        } else {
                            let lower = self.helper(Helper::LowerMem, &elem);
                            let _ = writeln!(
                                out,
                                "\tn := uint32(len(v))\n\tp := k.alloc(n*{size}, {align})\n\tfor i := uint32(0); i < n; i++ {{\n\t\t{lower}(p+i*{size}, v[i], k)\n\t}}\n\tf.push(uint64(p))\n\tf.push(uint64(n))"
                            );
                        }
                    }
                    TypeDefKind::Variant(_) | TypeDefKind::Option(_) | TypeDefKind::Result(_) => {
                        let Some((_, cases)) = self.cases(ty) else {
                            return;
                        };
                        let width = self.flat_count(ty).saturating_sub(1);
                        let case_of = self.case_of(ty);
                        let _ = writeln!(
                            out,
                            "\tc := {case_of}\n\tf.push(uint64(c))\n\tstart := len(f.v)\n\tswitch c {{"
                        );
                        for (i, (field, case_ty)) in cases.iter().enumerate() {
                            if let Some(t) = case_ty {
                                let lower = self.helper(Helper::LowerFlat, t);
                                let _ = writeln!(out, "\tcase {i}:\n\t\t{lower}(f, v.{field}, k)");
                            }
                        }
                        let _ = writeln!(out, "\t}}\n\tf.pad(start + {width})");
                    }
                    TypeDefKind::Type(_) => {}
                    kind => {
                        self.errors
                            .push(format!("{} types are not supported", kind.as_str()));
                    }
                }
            }
        }
    }
}

const PORTABLE_DOC: &str =
    "// Package wit is the canonical-ABI glue between Go and the Informant WIT
// contract: its types, the host's imports and the plugin's exports. The SDK
// (the parent package) wraps it; plugins use the SDK, not this package.
";

/// What every generated package carries: options, results, tuples, linear
/// memory access and the bookkeeping that keeps Go memory the host reads or
/// wrote reachable.
const RUNTIME_GO: &str = r#"// Option is a WIT option: Value is meaningful when Some is true.
type Option[T any] struct {
	Value T
	Some  bool
}

// Some is an option holding v.
func Some[T any](v T) Option[T] { return Option[T]{Value: v, Some: true} }

// None is an empty option.
func None[T any]() Option[T] { return Option[T]{} }

// Result is a WIT result: Err is meaningful when IsErr is true, Ok otherwise.
type Result[T, E any] struct {
	Ok    T
	Err   E
	IsErr bool
}

// Unit is the missing payload of a result or a variant case.
type Unit struct{}

// Tuple1 to Tuple4 are WIT tuples.
type Tuple1[A any] struct{ F0 A }
type Tuple2[A, B any] struct {
	F0 A
	F1 B
}
type Tuple3[A, B, C any] struct {
	F0 A
	F1 B
	F2 C
}
type Tuple4[A, B, C, D any] struct {
	F0 A
	F1 B
	F2 C
	F3 D
}

func boolIndex(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Linear memory, by 32-bit address. Go's garbage collector never moves
// objects, so an address stays valid while its object is reachable.
func mem(a uint32) unsafe.Pointer { return unsafe.Add(unsafe.Pointer(nil), uintptr(a)) }
func addr(p unsafe.Pointer) uint32 { return uint32(uintptr(p)) }
func ld8(a uint32) uint8           { return *(*uint8)(mem(a)) }
func ld16(a uint32) uint16         { return *(*uint16)(mem(a)) }
func ld32(a uint32) uint32         { return *(*uint32)(mem(a)) }
func ld64(a uint32) uint64         { return *(*uint64)(mem(a)) }
func st8(a uint32, v uint8)        { *(*uint8)(mem(a)) = v }
func st16(a uint32, v uint16)      { *(*uint16)(mem(a)) = v }
func st32(a uint32, v uint32)      { *(*uint32)(mem(a)) = v }
func st64(a uint32, v uint64)      { *(*uint64)(mem(a)) = v }

// reallocs holds what the host allocated through cabi_realloc until it is
// lifted: its addresses are integers to the garbage collector.
var reallocs []unsafe.Pointer

// realloc allocates for the host: Go memory, 8-aligned, kept reachable.
func realloc(old, oldSize, align, size uint32) uint32 {
	if size == 0 {
		return align
	}
	buf := make([]uint64, (size+7)/8)
	p := unsafe.Pointer(&buf[0])
	if old != 0 && oldSize != 0 {
		copy(unsafe.Slice((*byte)(p), size), unsafe.Slice((*byte)(mem(old)), min(oldSize, size)))
	}
	reallocs = append(reallocs, p)
	return addr(p)
}

// releaseReallocs forgets the host's allocations once lifted: the lifted
// values point into them, and keep them alive as long as they are used.
func releaseReallocs() {
	clear(reallocs)
	reallocs = reallocs[:0]
}

// A string or byte list the host allocated, lifted without a copy.
func liftString(p, n uint32) string {
	if n == 0 {
		return ""
	}
	return unsafe.String((*byte)(mem(p)), n)
}

func liftBytes(p, n uint32) []byte {
	if n == 0 {
		return []byte{}
	}
	return unsafe.Slice((*byte)(mem(p)), n)
}

// keep holds the Go memory lowered values point to until the host has read
// them (the end of an import call, or an export's post-return).
type keep struct {
	ptrs []unsafe.Pointer
}

func (k *keep) alloc(size, align uint32) uint32 {
	if size == 0 {
		return align
	}
	buf := make([]uint64, (size+7)/8)
	p := unsafe.Pointer(&buf[0])
	k.ptrs = append(k.ptrs, p)
	return addr(p)
}

func (k *keep) str(s string) (uint32, uint32) {
	if len(s) == 0 {
		return 1, 0
	}
	p := unsafe.Pointer(unsafe.StringData(s))
	k.ptrs = append(k.ptrs, p)
	return addr(p), uint32(len(s))
}

func (k *keep) bytes(b []byte) (uint32, uint32) {
	if len(b) == 0 {
		return 1, 0
	}
	p := unsafe.Pointer(unsafe.SliceData(b))
	k.ptrs = append(k.ptrs, p)
	return addr(p), uint32(len(b))
}

func (k *keep) release() {
	clear(k.ptrs)
	k.ptrs = k.ptrs[:0]
}

// exportKeep keeps an export's lowered result until its post-return.
var exportKeep keep

// Flat values, as raw bits: an i32 or f32 in the low 32 bits.
type flatReader struct {
	v []uint64
	i int
}

func (f *flatReader) next() uint64 {
	v := f.v[f.i]
	f.i++
	return v
}

type flatWriter struct {
	v []uint64
}

func (f *flatWriter) push(v uint64) { f.v = append(f.v, v) }

func (f *flatWriter) pad(n int) {
	for len(f.v) < n {
		f.v = append(f.v, 0)
	}
}
"#;

const WASIP1_GO: &str = r#"// The component model forbids a component to call out (a WASI clock read,
// say) while the host is calling its cabi_realloc, and Go's allocator can
// start a garbage collection, which reads the clock. So the collector is
// off whenever the host may call cabi_realloc: between calls (for an
// export's arguments) and during the imports that return strings or lists;
// the plugin's own code runs with it on. Turning it off waits for a
// collection in progress to finish, at a point where that is allowed.
func gcOff() { debug.SetGCPercent(-1) }
func gcOn()  { debug.SetGCPercent(100) }

func init() {
	// Allocation sampling could record a profile during cabi_realloc.
	runtime.MemProfileRate = 0
	// A fatal runtime error (out of memory) logs its message, not a
	// goroutine dump: writing one through the host's log can outlast the
	// call's deadline, and turn an out-of-memory into a timeout.
	debug.SetTraceback("none")
	gcOff()
}

// cabi_realloc: the host allocates in Go memory for what it passes in.
//
//go:wasmexport cabi_realloc
func exportCabiRealloc(old, oldSize, align, size uint32) uint32 {
	return realloc(old, oldSize, align, size)
}

// The WASI preview1 adapter allocates its state once, during the Go
// runtime's own start (its first clock or random read), when Go code cannot
// allocate yet: from this static arena instead, which nothing else uses.
var adapterArena [adapterArenaSize]byte
var adapterUsed uintptr

const adapterArenaSize = 256 << 10

//go:wasmexport cabi_realloc_adapter
//go:nosplit
func exportCabiReallocAdapter(old, oldSize, align, size uint32) uint32 {
	base := uintptr(unsafe.Pointer(&adapterArena[0]))
	start := (base + adapterUsed + uintptr(align) - 1) &^ (uintptr(align) - 1)
	end := start + uintptr(size)
	if end > base+adapterArenaSize {
		return 0
	}
	adapterUsed = end - base
	return uint32(start)
}

"#;

const OTHER_GO: &str = r#"// Outside a plugin (a native build, `go test`, an editor), the host's
// functions do not exist: calling one panics, saying so.

type notInPlugin struct{}

func (notInPlugin) Error() string {
	return "informant: the host's functions exist only inside a plugin component built with informant-go build"
}

var errNotInPlugin error = notInPlugin{}

func gcOff() {}
func gcOn()  {}

"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    /// The glue checked in under guest-sdk/go/internal/wit is what the
    /// contract in wit/ generates: a contract change without regenerating
    /// fails here, with the command that fixes it.
    #[test]
    fn the_checked_in_go_glue_is_what_the_contract_generates() {
        let generated = bindings(Some(&root().join("wit")), "plugin").unwrap();
        for (name, text) in generated.files {
            let path = root().join("guest-sdk/go/internal/wit").join(name);
            let current = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                current == text,
                "{} is stale: regenerate it with `cargo run -p informant-go -- bindings`",
                path.display()
            );
        }
    }

    #[test]
    fn names_are_go_style() {
        assert_eq!(camel("final-state-unknown"), "FinalStateUnknown");
        assert_eq!(camel("list-keys"), "ListKeys");
        assert_eq!(camel("api-version"), "ApiVersion");
    }

    /// Resources (and the other kinds the contract does not use) are
    /// refused with an error that names the problem, not generated wrong.
    #[test]
    fn an_unsupported_type_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("w.wit"),
            "package t:t@0.1.0;\ninterface i { resource r; f: func(x: r); }\nworld w { import i; }\n",
        )
        .unwrap();
        let err = bindings(Some(dir.path()), "w").err().unwrap().to_string();
        assert!(err.contains("not supported"), "{err}");
    }
}
