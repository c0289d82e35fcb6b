//! `cnncost diff A B`: what a change to a network does, op by op and in
//! total (docs/review.md).
//!
//! Ops are aligned in four passes, each on what the last left unmatched:
//! 1. by dotted name, when the op kind is the same (`layer1.0.conv1`) and
//!    the name's last part is not a number (`3`, `features.0`: positions,
//!    which an insertion shifts); matched ops out of their relative order
//!    are *moved*;
//! 2. by structure: the longest common subsequence of ops equal in kind
//!    and arguments is *renamed* (a relabelled layer, or the shifted
//!    numbers of unlabelled ops after an insertion);
//! 3. by name with another op kind: *changed* (`conv` became `maxpool`);
//! 4. what is left is *removed* (from A) or *added* (in B).

use crate::render::{binary_bytes, markdown_grid, thousands};
use crate::Analysis;
use dsl::ir::{Network, Op};
use petgraph::graph::NodeIndex;
use serde_json::{json, Value};
use std::collections::HashMap;

/// How an op of A relates to one of B.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Same,
    Changed,
    Renamed,
    Moved,
    Added,
    Removed,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Same => "same",
            Status::Changed => "changed",
            Status::Renamed => "renamed",
            Status::Moved => "moved",
            Status::Added => "added",
            Status::Removed => "removed",
        }
    }
}

/// What of a matched pair differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Op,
    Args,
    Output,
    Params,
    Macs,
    Memory,
    Position,
}

impl Field {
    pub fn name(self) -> &'static str {
        match self {
            Field::Op => "op",
            Field::Args => "args",
            Field::Output => "output",
            Field::Params => "params",
            Field::Macs => "macs",
            Field::Memory => "memory",
            Field::Position => "position",
        }
    }
}

/// One op of A, of B, or a matched pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerChange {
    pub status: Status,
    pub a: Option<NodeIndex>,
    pub b: Option<NodeIndex>,
    /// For a matched pair, what differs (empty when `Same`).
    pub fields: Vec<Field>,
}

/// One total of both networks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Total {
    pub quantity: Quantity,
    pub a: u64,
    pub b: u64,
}

impl Total {
    pub fn delta(&self) -> i128 {
        i128::from(self.b) - i128::from(self.a)
    }
    /// The change in percent of A; infinite when A is 0 and B is not.
    pub fn percent(&self) -> f64 {
        match (self.a, self.b) {
            (0, 0) => 0.0,
            (0, _) => f64::INFINITY,
            (a, _) => self.delta() as f64 / a as f64 * 100.0,
        }
    }
}

/// A total that `--fail-if` can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quantity {
    Params,
    Buffers,
    Macs,
    Flops,
    Activations,
    Memory,
    Depth,
    /// With `--train`: the backward's multiply-adds.
    BackwardMacs,
    /// With `--train`: bytes saved for the backward.
    Saved,
    /// With `--train`: the training step's peak memory.
    Peak,
}

impl Quantity {
    pub const ALL: [(&'static str, Quantity); 10] = [
        ("params", Quantity::Params),
        ("buffers", Quantity::Buffers),
        ("macs", Quantity::Macs),
        ("flops", Quantity::Flops),
        ("activations", Quantity::Activations),
        ("memory", Quantity::Memory),
        ("depth", Quantity::Depth),
        ("backward_macs", Quantity::BackwardMacs),
        ("saved", Quantity::Saved),
        ("peak", Quantity::Peak),
    ];
    pub fn name(self) -> &'static str {
        Quantity::ALL
            .iter()
            .find(|(_, q)| *q == self)
            .map_or("?", |(n, _)| n)
    }
    /// Whether the quantity needs a training analysis.
    pub fn is_training(self) -> bool {
        matches!(
            self,
            Quantity::BackwardMacs | Quantity::Saved | Quantity::Peak
        )
    }
    /// Whether it counts bytes (printed as MiB).
    pub fn is_bytes(self) -> bool {
        matches!(
            self,
            Quantity::Activations | Quantity::Memory | Quantity::Saved | Quantity::Peak
        )
    }
    /// The total in an analysis; `None` for a training one without `--train`.
    pub fn of(self, a: &Analysis) -> Option<u64> {
        let t = &a.totals;
        let train = a.training.as_ref();
        Some(match self {
            Quantity::Params => t.params,
            Quantity::Buffers => t.buffers,
            Quantity::Macs => t.macs,
            Quantity::Flops => t.flops,
            Quantity::Activations => t.activation_bytes,
            Quantity::Memory => t.peak_activation_bytes,
            Quantity::Depth => t.depth,
            Quantity::BackwardMacs => train?.backward_macs(),
            Quantity::Saved => train?.saved_bytes,
            Quantity::Peak => train?.peak_bytes,
        })
    }
}

pub struct Diff<'a, 'n> {
    pub a: &'a Analysis<'n>,
    pub b: &'a Analysis<'n>,
    /// In B's order, each removed op after what preceded it in A.
    pub layers: Vec<LayerChange>,
    /// Every quantity both analyses have (the training ones with `--train`).
    pub totals: Vec<Total>,
    /// More ops were left unmatched by name than the structural match takes
    /// (`LCS_LIMIT`): renamed ops show as removed and added.
    pub structure_skipped: bool,
}

impl Diff<'_, '_> {
    pub fn total(&self, q: Quantity) -> Option<&Total> {
        self.totals.iter().find(|t| t.quantity == q)
    }
    /// Whether anything differs, per op or in total.
    pub fn is_empty(&self) -> bool {
        self.layers.iter().all(|l| l.status == Status::Same)
            && self.totals.iter().all(|t| t.a == t.b)
    }
}

/// The ops of a network in execution order, the input left out.
fn ops(net: &Network) -> Vec<NodeIndex> {
    net.graph
        .node_indices()
        .filter(|&n| net.graph[n].op != Op::Input)
        .collect()
}

/// The most cells of the structural match's table (4,000 ops unmatched by
/// name on each side).
pub const LCS_LIMIT: usize = 16_000_000;

/// The longest common subsequence of `a` and `b` under `same`, as index
/// pairs. Quadratic: beyond `LCS_LIMIT` cells the pass is skipped and the
/// ops stay unmatched (added and removed).
fn lcs<T>(a: &[T], b: &[T], same: impl Fn(&T, &T) -> bool) -> Vec<(usize, usize)> {
    let (n, m) = (a.len(), b.len());
    if n == 0 || m == 0 || n.saturating_mul(m) > LCS_LIMIT {
        return Vec::new();
    }
    // len[i][j]: the LCS of a[i..] and b[j..].
    let mut len = vec![0u32; (n + 1) * (m + 1)];
    let at = |i: usize, j: usize| i * (m + 1) + j;
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            len[at(i, j)] = if same(&a[i], &b[j]) {
                len[at(i + 1, j + 1)] + 1
            } else {
                len[at(i + 1, j)].max(len[at(i, j + 1)])
            };
        }
    }
    let (mut i, mut j, mut pairs) = (0, 0, Vec::new());
    while i < n && j < m {
        if same(&a[i], &b[j]) {
            pairs.push((i, j));
            i += 1;
            j += 1;
        } else if len[at(i + 1, j)] >= len[at(i, j + 1)] {
            i += 1;
        } else {
            j += 1;
        }
    }
    pairs
}

/// Indices of a longest strictly increasing subsequence of `v`.
fn longest_increasing(v: &[usize]) -> Vec<usize> {
    // tails[k]: index in v of the smallest tail of an increasing run of k+1.
    let mut tails: Vec<usize> = Vec::new();
    let mut prev = vec![usize::MAX; v.len()];
    for (i, &x) in v.iter().enumerate() {
        let k = tails.partition_point(|&t| v[t] < x);
        if k > 0 {
            prev[i] = tails[k - 1];
        }
        if k == tails.len() {
            tails.push(i);
        } else {
            tails[k] = i;
        }
    }
    let mut out = Vec::with_capacity(tails.len());
    let mut i = tails.last().copied().unwrap_or(usize::MAX);
    while i != usize::MAX {
        out.push(i);
        i = prev[i];
    }
    out.reverse();
    out
}

/// Pairs of positions in `ops(A)` and `ops(B)`, with the pass that matched
/// them.
fn align(
    a: &Network,
    b: &Network,
    oa: &[NodeIndex],
    ob: &[NodeIndex],
) -> (Vec<(usize, usize, Status)>, bool) {
    let mut pairs = Vec::new();
    let mut used_a = vec![false; oa.len()];
    let mut used_b = vec![false; ob.len()];
    // 1. By name, same kind.
    let by_name: HashMap<&str, usize> = ob
        .iter()
        .enumerate()
        .map(|(j, &n)| (&*b.graph[n].name, j))
        .collect();
    // A name that ends in a number is a position: inserting an op before
    // it renumbers it, so it is matched by structure, not by name.
    let positional = |name: &str| {
        name.rsplit('.')
            .next()
            .is_some_and(|last| last.bytes().all(|b| b.is_ascii_digit()))
    };
    for (i, &n) in oa.iter().enumerate() {
        let node = &a.graph[n];
        if positional(&node.name) {
            continue;
        }
        if let Some(&j) = by_name.get(&*node.name) {
            if b.graph[ob[j]].op.op_kind() == node.op.op_kind() {
                pairs.push((i, j, Status::Same));
                used_a[i] = true;
                used_b[j] = true;
            }
        }
    }
    // Out of relative order: not on a longest run kept in order.
    let order: Vec<usize> = pairs.iter().map(|p| p.1).collect();
    let mut in_order = vec![false; pairs.len()];
    for k in longest_increasing(&order) {
        in_order[k] = true;
    }
    for (p, ok) in pairs.iter_mut().zip(in_order) {
        if !ok {
            p.2 = Status::Moved;
        }
    }
    // 2. By structure: equal ops (kind and arguments), in order. Input
    // shapes may differ (an op after an inserted pool): that shows as a
    // changed output.
    let rest_a: Vec<usize> = (0..oa.len()).filter(|&i| !used_a[i]).collect();
    let rest_b: Vec<usize> = (0..ob.len()).filter(|&j| !used_b[j]).collect();
    let same_op = |&i: &usize, &j: &usize| a.graph[oa[i]].op == b.graph[ob[j]].op;
    let (lcs_pairs, skipped) = lcs_by(&rest_a, &rest_b, same_op);
    for (i, j) in lcs_pairs {
        // Matched by structure under the same name: not a rename.
        let renamed = a.graph[oa[i]].name != b.graph[ob[j]].name;
        pairs.push((
            i,
            j,
            if renamed {
                Status::Renamed
            } else {
                Status::Same
            },
        ));
        used_a[i] = true;
        used_b[j] = true;
    }
    // 3. By name, another kind.
    for (i, &n) in oa.iter().enumerate() {
        if used_a[i] {
            continue;
        }
        if let Some(&j) = by_name.get(&*a.graph[n].name) {
            if !used_b[j] {
                pairs.push((i, j, Status::Changed));
                used_a[i] = true;
                used_b[j] = true;
            }
        }
    }
    (pairs, skipped)
}

/// `lcs` over two lists of positions, mapped back to positions; `true`
/// when the lists were too long to match.
fn lcs_by(
    a: &[usize],
    b: &[usize],
    same: impl Fn(&usize, &usize) -> bool,
) -> (Vec<(usize, usize)>, bool) {
    let skipped = a.len().saturating_mul(b.len()) > LCS_LIMIT;
    let pairs = lcs(a, b, same)
        .into_iter()
        .map(|(i, j)| (a[i], b[j]))
        .collect();
    (pairs, skipped)
}

/// What differs between op `x` of A and op `y` of B.
fn fields(da: &Analysis, db: &Analysis, x: NodeIndex, y: NodeIndex) -> Vec<Field> {
    let (na, nb) = (&da.network.graph[x], &db.network.graph[y]);
    let (la, lb) = (da.layer(x), db.layer(y));
    let mut f = Vec::new();
    if na.op.op_kind() != nb.op.op_kind() {
        f.push(Field::Op);
    } else if na.op != nb.op {
        f.push(Field::Args);
    }
    if na.shape != nb.shape {
        f.push(Field::Output);
    }
    if la.cost.params != lb.cost.params {
        f.push(Field::Params);
    }
    if la.cost.macs != lb.cost.macs {
        f.push(Field::Macs);
    }
    if la.activation_bytes != lb.activation_bytes {
        f.push(Field::Memory);
    }
    f
}

/// Aligns the ops of two analysed networks and compares them and their
/// totals.
pub fn diff<'a, 'n>(a: &'a Analysis<'n>, b: &'a Analysis<'n>) -> Diff<'a, 'n> {
    let (na, nb) = (a.network, b.network);
    let (oa, ob) = (ops(na), ops(nb));
    let (pairs, structure_skipped) = align(na, nb, &oa, &ob);
    let mut match_of_a = vec![None; oa.len()];
    let mut match_of_b = vec![None; ob.len()];
    for &(i, j, status) in &pairs {
        match_of_a[i] = Some((j, status));
        match_of_b[j] = Some((i, status));
    }
    // Order: B's, each removed op placed after the B op matched to the
    // last matched op before it in A.
    let mut keyed: Vec<((usize, usize, usize), LayerChange)> = Vec::new();
    for (j, m) in match_of_b.iter().enumerate() {
        let y = ob[j];
        let change = match *m {
            None => LayerChange {
                status: Status::Added,
                a: None,
                b: Some(y),
                fields: Vec::new(),
            },
            Some((i, status)) => {
                let x = oa[i];
                let mut f = fields(a, b, x, y);
                if status == Status::Moved {
                    f.push(Field::Position);
                }
                let status = match status {
                    Status::Same | Status::Changed if f.is_empty() => Status::Same,
                    Status::Same | Status::Changed => Status::Changed,
                    other @ (Status::Renamed | Status::Moved | Status::Added | Status::Removed) => {
                        other
                    }
                };
                LayerChange {
                    status,
                    a: Some(x),
                    b: Some(y),
                    fields: f,
                }
            }
        };
        keyed.push(((j + 1, 0, 0), change));
    }
    let mut anchor = 0;
    for (i, m) in match_of_a.iter().enumerate() {
        match m {
            Some((j, _)) => anchor = j + 1,
            None => keyed.push((
                (anchor, 1, i),
                LayerChange {
                    status: Status::Removed,
                    a: Some(oa[i]),
                    b: None,
                    fields: Vec::new(),
                },
            )),
        }
    }
    keyed.sort_by_key(|k| k.0);
    let totals = Quantity::ALL
        .iter()
        .filter_map(|&(_, q)| {
            Some(Total {
                quantity: q,
                a: q.of(a)?,
                b: q.of(b)?,
            })
        })
        .collect();
    Diff {
        a,
        b,
        layers: keyed.into_iter().map(|k| k.1).collect(),
        totals,
        structure_skipped,
    }
}

// ---- --fail-if ----

/// The comparison of a `--fail-if` condition or a `--budget` bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    Gt,
    Ge,
    Lt,
    Le,
}

impl Cmp {
    /// Whether `value` compares so with `bound`.
    pub fn holds<T: PartialOrd>(self, value: T, bound: T) -> bool {
        match self {
            Cmp::Gt => value > bound,
            Cmp::Ge => value >= bound,
            Cmp::Lt => value < bound,
            Cmp::Le => value <= bound,
        }
    }
}

/// A number's K, M or G suffix (10^3, 10^6, 10^9) split off: the digits
/// and the scale (1 without one).
pub(crate) fn split_scale(number: &str) -> (&str, f64) {
    match number.chars().last() {
        Some('K') => (&number[..number.len() - 1], 1e3),
        Some('M') => (&number[..number.len() - 1], 1e6),
        Some('G') => (&number[..number.len() - 1], 1e9),
        _ => (number, 1.0),
    }
}

/// One `--fail-if` condition: `macs>+5%` holds when B's MACs are more than
/// 5% above A's; `params>+0` when B has any more parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    pub quantity: Quantity,
    pub cmp: Cmp,
    /// The change: in percent of A when `percent`, else absolute.
    pub value: f64,
    pub percent: bool,
    /// As written, for reports.
    pub text: String,
}

const QUANTITIES: &str =
    "params, buffers, macs, flops, activations, memory, depth, backward_macs, saved, peak";

/// How a term of `--fail-if` or `--budget` is worded in its messages.
pub(crate) struct Wording {
    /// The option: `--fail-if`.
    pub option: &'static str,
    /// An example of the whole option: `'macs>+5% params>+0'`.
    pub example: &'static str,
    /// The comparisons, in the order the messages give them.
    pub comparisons: &'static str,
    /// What follows the comparison: `a change, such as macs>+5%`.
    pub value: &'static str,
    /// Said after a comparison that is not one of them.
    pub note: &'static str,
}

/// The terms of an option's text, separated by spaces or commas.
pub(crate) fn terms<'t>(text: &'t str, w: &Wording) -> Result<Vec<&'t str>, String> {
    let terms: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|t| !t.is_empty())
        .collect();
    if terms.is_empty() {
        return Err(format!("{} is empty: give {}", w.option, w.example));
    }
    Ok(terms)
}

/// A term's quantity, comparison and the text after it.
pub(crate) fn split_term<'t>(
    term: &'t str,
    w: &Wording,
) -> Result<(Quantity, Cmp, &'t str), String> {
    let at = term.find(['<', '>', '=', '!']).ok_or_else(|| {
        format!(
            "`{term}` has no comparison: write QUANTITY, then {}, then {}",
            w.comparisons, w.value
        )
    })?;
    let (name, rest) = term.split_at(at);
    let quantity = Quantity::ALL
        .iter()
        .find(|(n, _)| *n == name)
        .map(|&(_, q)| q)
        .ok_or_else(|| {
            let hint = dsl::suggest(name, Quantity::ALL.iter().map(|(n, _)| *n))
                .map_or(String::new(), |s| format!(" (did you mean `{s}`?)"));
            if name.is_empty() {
                format!("`{term}` names no quantity: one of {QUANTITIES}")
            } else {
                format!("unknown quantity `{name}` in `{term}`{hint}: one of {QUANTITIES}")
            }
        })?;
    let (cmp, value) = if let Some(v) = rest.strip_prefix(">=") {
        (Cmp::Ge, v)
    } else if let Some(v) = rest.strip_prefix("<=") {
        (Cmp::Le, v)
    } else if let Some(v) = rest.strip_prefix('>') {
        (Cmp::Gt, v)
    } else if let Some(v) = rest.strip_prefix('<') {
        (Cmp::Lt, v)
    } else {
        return Err(format!(
            "`{term}`: the comparison must be {}{}",
            w.comparisons, w.note
        ));
    };
    Ok((quantity, cmp, value))
}

const FAIL_IF: Wording = Wording {
    option: "--fail-if",
    example: "conditions such as 'macs>+5% params>+0'",
    comparisons: ">, >=, < or <=",
    value: "a change, such as macs>+5%",
    note: " (a change is bounded, not matched)",
};

/// The conditions of one `--fail-if`.
#[derive(Clone, Debug, PartialEq)]
pub struct Conditions(pub Vec<Condition>);

/// Parses `--fail-if`: conditions separated by spaces or commas, each
/// `QUANTITY CMP CHANGE`, where CMP is `>`, `>=`, `<` or `<=` and CHANGE a
/// signed number with an optional K, M or G, or a percentage.
pub fn parse_conditions(text: &str) -> Result<Conditions, String> {
    terms(text, &FAIL_IF)?
        .into_iter()
        .map(parse_condition)
        .collect::<Result<_, _>>()
        .map(Conditions)
}

fn parse_condition(term: &str) -> Result<Condition, String> {
    let (quantity, cmp, value) = split_term(term, &FAIL_IF)?;
    let bad = || {
        format!(
            "`{value}` in `{term}` is not a change: write a signed number with an optional K, M or G, or a percentage, such as +5%, -10% or +1M"
        )
    };
    let (number, percent) = match value.strip_suffix('%') {
        Some(n) => (n, true),
        None => (value, false),
    };
    // A percentage takes no suffix.
    let (digits, scale) = if percent {
        (number, 1.0)
    } else {
        split_scale(number)
    };
    if digits.is_empty() || digits.starts_with(['+', '-']) && digits.len() == 1 {
        return Err(bad());
    }
    let v: f64 = digits.parse().map_err(|_| bad())?;
    if !v.is_finite() {
        return Err(bad());
    }
    Ok(Condition {
        quantity,
        cmp,
        value: v * scale,
        percent,
        text: term.to_string(),
    })
}

impl Condition {
    /// Whether the condition holds for the diff's totals; `None` when the
    /// quantity was not computed (a training one without `--train`).
    pub fn holds(&self, d: &Diff) -> Option<bool> {
        let t = d.total(self.quantity)?;
        let change = if self.percent {
            t.percent()
        } else {
            t.delta() as f64
        };
        Some(self.cmp.holds(change, self.value))
    }
}

// ---- output ----

fn shown<'d>(d: &'d Diff, all: bool) -> impl Iterator<Item = &'d LayerChange> {
    d.layers
        .iter()
        .filter(move |l| all || l.status != Status::Same)
}

/// `a → b` when they differ, else `a`.
fn arrow(a: Option<String>, b: Option<String>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if a == b => a,
        (Some(a), Some(b)) => format!("{a} → {b}"),
        (Some(x), None) | (None, Some(x)) => x,
        (None, None) => String::new(),
    }
}

fn signed(delta: i128) -> String {
    let s = thousands(delta.unsigned_abs() as u64);
    match delta.signum() {
        1 => format!("+{s}"),
        -1 => format!("-{s}"),
        _ => "0".to_string(),
    }
}

/// A change in percent, `new` when A was 0.
pub fn signed_percent(p: f64) -> String {
    if p.is_infinite() {
        "new".to_string()
    } else if p == 0.0 {
        "0%".to_string()
    } else {
        format!("{p:+.2}%")
    }
}

/// A total's value as the tables print it: bytes in KiB, MiB or GiB.
pub fn value_text(q: Quantity, v: u64) -> String {
    if q.is_bytes() {
        binary_bytes(v)
    } else {
        thousands(v)
    }
}

fn delta_text(q: Quantity, t: &Total) -> String {
    if q.is_bytes() {
        let d = t.delta();
        let s = binary_bytes(d.unsigned_abs() as u64);
        match d.signum() {
            1 => format!("+{s}"),
            -1 => format!("-{s}"),
            _ => "0".to_string(),
        }
    } else {
        signed(t.delta())
    }
}

/// The per-op rows: change, name, op, output, params, MACs, memory.
fn layer_grid(d: &Diff, all: bool) -> Vec<Vec<String>> {
    let mut g = vec![[
        "change", "layer", "op", "output", "params", "MACs", "memory",
    ]
    .map(String::from)
    .to_vec()];
    fn side<'x>(
        an: &'x Analysis,
        n: Option<NodeIndex>,
    ) -> Option<(&'x dsl::Node, &'x crate::Layer)> {
        n.map(|n| (&an.network.graph[n], an.layer(n)))
    }
    for l in shown(d, all) {
        let (x, y) = (side(d.a, l.a), side(d.b, l.b));
        let get = |f: &dyn Fn(&dsl::Node, &crate::Layer) -> String| {
            arrow(x.map(|(n, la)| f(n, la)), y.map(|(n, la)| f(n, la)))
        };
        // The status, then what differs besides (a moved op's position is
        // its status).
        let besides: Vec<Field> = l
            .fields
            .iter()
            .copied()
            .filter(|&f| f != Field::Position)
            .collect();
        let change = match (l.status, besides.is_empty()) {
            (s, true) => s.name().to_string(),
            (s, false) => format!("{}: {}", s.name(), names(&besides)),
        };
        g.push(vec![
            change,
            get(&|n, _| n.name.to_string()),
            get(&|n, _| n.op.to_string()),
            get(&|n, _| n.shape.to_string()),
            get(&|_, la| thousands(la.cost.params)),
            get(&|_, la| thousands(la.cost.macs)),
            get(&|_, la| crate::render::kilobytes(la.activation_bytes) + " KB"),
        ]);
    }
    g
}

fn names(f: &[Field]) -> String {
    f.iter().map(|f| f.name()).collect::<Vec<_>>().join(", ")
}

/// The totals: quantity, A, B, change, change in %.
fn totals_grid(d: &Diff) -> Vec<Vec<String>> {
    let mut g = vec![["total", "A", "B", "change", "%"]
        .map(String::from)
        .to_vec()];
    for t in &d.totals {
        let q = t.quantity;
        g.push(vec![
            q.name().to_string(),
            value_text(q, t.a),
            value_text(q, t.b),
            delta_text(q, t),
            signed_percent(t.percent()),
        ]);
    }
    g
}

fn heading(d: &Diff) -> String {
    let count = |s: Status| d.layers.iter().filter(|l| l.status == s).count();
    let o = d.a.options;
    format!(
        "A: {} ({})\nB: {} ({})\nbatch {}, {}: {} changed, {} added, {} removed, {} renamed, {} moved, {} the same",
        d.a.network.name,
        d.a.network.source.name,
        d.b.network.name,
        d.b.network.source.name,
        o.batch,
        o.dtype,
        count(Status::Changed),
        count(Status::Added),
        count(Status::Removed),
        count(Status::Renamed),
        count(Status::Moved),
        count(Status::Same),
    )
}

/// For a terminal: the heading, the ops that differ (all with `all`), the
/// totals.
pub fn table(d: &Diff, all: bool) -> String {
    let layers = layer_grid(d, all);
    let body = if layers.len() > 1 {
        crate::render::aligned_grid(&layers, &[0, 1, 2, 3])
    } else {
        "no op differs\n".to_string()
    };
    format!(
        "{}\n\n{body}\n{}",
        heading(d),
        crate::render::aligned_grid(&totals_grid(d), &[0])
    )
}

/// Markdown, for a pull-request comment.
pub fn markdown(d: &Diff, all: bool) -> String {
    let layers = layer_grid(d, all);
    let body = if layers.len() > 1 {
        markdown_grid(&layers, &[0, 1, 2, 3])
    } else {
        "No op differs.\n".to_string()
    };
    format!(
        "{}\n\n{body}\n{}",
        heading(d).replace('\n', "  \n"),
        markdown_grid(&totals_grid(d), &[0])
    )
}

/// JSON: every op's change with both sides, and the totals (docs/json.md).
pub fn json(d: &Diff, all: bool) -> Value {
    let side = |an: &Analysis, n: Option<NodeIndex>| match n {
        None => Value::Null,
        Some(n) => {
            let node = &an.network.graph[n];
            let l = an.layer(n);
            json!({
                "name": &*node.name,
                "op": node.op.to_string(),
                "output": node.shape.dims(),
                "params": l.cost.params,
                "macs": l.cost.macs,
                "memory_bytes": l.activation_bytes,
            })
        }
    };
    let layers: Vec<Value> = shown(d, all)
        .map(|l| {
            json!({
                "change": l.status.name(),
                "fields": l.fields.iter().map(|f| f.name()).collect::<Vec<_>>(),
                "a": side(d.a, l.a),
                "b": side(d.b, l.b),
            })
        })
        .collect();
    let totals: serde_json::Map<String, Value> = d
        .totals
        .iter()
        .map(|t| {
            let p = t.percent();
            (
                t.quantity.name().to_string(),
                json!({
                    "a": t.a,
                    "b": t.b,
                    "change": i64::try_from(t.delta()).map_or_else(|_| json!(t.delta() as f64), |d| json!(d)),
                    "percent": if p.is_finite() { json!(p) } else { Value::Null },
                }),
            )
        })
        .collect();
    json!({
        "format_version": 1,
        "a": {"name": d.a.network.name, "file": d.a.network.source.name},
        "b": {"name": d.b.network.name, "file": d.b.network.source.name},
        "batch": d.a.options.batch,
        "dtype": d.a.options.dtype.to_string(),
        "layers": layers,
        "totals": totals,
    })
}
