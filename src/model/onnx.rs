//! ONNX export of the residual MLP, written by hand with prost.
//!
//! Self-play workers run models through ONNX Runtime and must build without
//! libtorch, so the exporter is plain Rust: it turns named weights (PyTorch
//! layout, `[out, in]`) into a `ModelProto` with the fixed contract that
//! `crate::infer` checks on load (opset 17, IR 8, input `obs` `[N, obs_dim]`,
//! outputs `policy` `[N, action_dim]` and `value` `[N, 1]`).

use std::collections::BTreeMap;

use prost::Message;
use serde::{Deserialize, Serialize};

/// ONNX operator set the graph is written against.
pub const OPSET: i64 = 17;
/// ONNX IR version (8 = 2021-07-30), understood by every current runtime.
pub const IR_VERSION: i64 = 8;
/// Symbolic name of the batch dimension.
pub const BATCH_DIM: &str = "N";

/// Shape of the residual MLP policy/value network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MlpSpec {
    pub obs_dim: usize,
    pub action_dim: usize,
    pub hidden: usize,
    pub blocks: usize,
    pub value_hidden: usize,
}

/// Named tensors: name -> (shape, row-major data).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Weights(pub BTreeMap<String, (Vec<usize>, Vec<f32>)>);

impl Weights {
    /// The data of tensor `name`, if present.
    pub fn data(&self, name: &str) -> Option<&[f32]> {
        self.0.get(name).map(|(_, data)| data.as_slice())
    }
}

/// The tensors `spec` needs, with their shapes, in forward order.
pub fn mlp_names(spec: &MlpSpec) -> Vec<(String, Vec<usize>)> {
    let (h, vh) = (spec.hidden, spec.value_hidden);
    let mut names = Vec::with_capacity(4 * spec.blocks + 8);
    let mut linear = |prefix: String, out: usize, inp: usize| {
        names.push((format!("{prefix}.weight"), vec![out, inp]));
        names.push((format!("{prefix}.bias"), vec![out]));
    };
    linear("input".into(), h, spec.obs_dim);
    for k in 0..spec.blocks {
        linear(format!("blocks.{k}.fc1"), h, h);
        linear(format!("blocks.{k}.fc2"), h, h);
    }
    linear("policy".into(), spec.action_dim, h);
    linear("value_hidden".into(), vh, h);
    linear("value".into(), 1, vh);
    names
}

/// Checks that `w` holds exactly the tensors of `spec`, each with the right
/// shape and length, so a checkpoint from another architecture is refused
/// instead of exported into a model that computes something else.
pub fn check_weights(spec: &MlpSpec, w: &Weights) -> Result<(), String> {
    check_spec(spec)?;
    let expected = mlp_names(spec);
    for (name, shape) in &expected {
        check_tensor(w, name, shape)?;
    }
    let unexpected: Vec<&str> =
        w.0.keys()
            .filter(|name| !expected.iter().any(|(n, _)| n == *name))
            .map(String::as_str)
            .collect();
    if !unexpected.is_empty() {
        return Err(format!(
            "unexpected tensors for {spec:?}: {}",
            unexpected.join(", ")
        ));
    }
    Ok(())
}

/// Every layer needs a non-zero width; zero blocks is a valid (plain) MLP.
fn check_spec(spec: &MlpSpec) -> Result<(), String> {
    let dims = [
        ("obs_dim", spec.obs_dim),
        ("action_dim", spec.action_dim),
        ("hidden", spec.hidden),
        ("value_hidden", spec.value_hidden),
    ];
    match dims.iter().find(|(_, d)| *d == 0) {
        Some((field, _)) => Err(format!("MLP spec field `{field}` must be > 0")),
        None => Ok(()),
    }
}

fn check_tensor(w: &Weights, name: &str, shape: &[usize]) -> Result<(), String> {
    let (got_shape, data) =
        w.0.get(name)
            .ok_or_else(|| format!("missing tensor `{name}` (expected shape {shape:?})"))?;
    if got_shape != shape {
        return Err(format!(
            "tensor `{name}` has shape {got_shape:?}, expected {shape:?}"
        ));
    }
    let numel: usize = shape.iter().product();
    if data.len() != numel {
        return Err(format!(
            "tensor `{name}` has {} values, shape {shape:?} needs {numel}",
            data.len()
        ));
    }
    Ok(())
}

/// Serialises the network as ONNX `ModelProto` bytes.
pub fn export_mlp(spec: &MlpSpec, w: &Weights) -> Result<Vec<u8>, String> {
    check_weights(spec, w)?;
    let graph = proto::GraphProto {
        name: "selfplay_mlp".into(),
        node: mlp_nodes(spec),
        initializer: mlp_names(spec)
            .iter()
            .map(|(name, shape)| proto::tensor(name, shape, &w.0[name].1))
            .collect(),
        input: vec![proto::value_info("obs", &[None, Some(spec.obs_dim)])],
        output: vec![
            proto::value_info("policy", &[None, Some(spec.action_dim)]),
            proto::value_info("value", &[None, Some(1)]),
        ],
    };
    Ok(proto::model(graph).encode_to_vec())
}

/// Appends graph nodes while handing out unique intermediate names.
struct GraphBuilder {
    nodes: Vec<proto::NodeProto>,
}

impl GraphBuilder {
    fn node(&mut self, op: &str, inputs: &[&str], output: &str) -> String {
        self.nodes.push(proto::node(op, inputs, output));
        output.to_string()
    }

    /// `x W^T + b`, as PyTorch's `nn.Linear` stores `W` as `[out, in]`.
    fn linear(&mut self, x: &str, layer: &str, output: &str) -> String {
        let (weight, bias) = (format!("{layer}.weight"), format!("{layer}.bias"));
        self.nodes
            .push(proto::gemm_trans_b(x, &weight, &bias, output));
        output.to_string()
    }

    fn linear_relu(&mut self, x: &str, layer: &str) -> String {
        let pre = self.linear(x, layer, &format!("{layer}/out"));
        self.node("Relu", &[&pre], &format!("{layer}/relu"))
    }
}

fn mlp_nodes(spec: &MlpSpec) -> Vec<proto::NodeProto> {
    let mut g = GraphBuilder { nodes: Vec::new() };
    let mut h = g.linear_relu("obs", "input");
    for k in 0..spec.blocks {
        let block = format!("blocks.{k}");
        let inner = g.linear_relu(&h, &format!("{block}.fc1"));
        let fc2 = g.linear(&inner, &format!("{block}.fc2"), &format!("{block}.fc2/out"));
        let sum = g.node("Add", &[&h, &fc2], &format!("{block}/add"));
        h = g.node("Relu", &[&sum], &format!("{block}/relu"));
    }
    g.linear(&h, "policy", "policy");
    let vh = g.linear_relu(&h, "value_hidden");
    let v = g.linear(&vh, "value", "value/out");
    g.node("Tanh", &[&v], "value");
    g.nodes
}

/// Plain-Rust forward pass of the same network, the reference for tests.
///
/// Returns `(policy [n * action_dim], value [n])`.
///
/// # Panics
/// If `w` does not match `spec` or `obs.len() != n * obs_dim`; call
/// [`check_weights`] first on weights that come from outside.
pub fn forward_reference(
    spec: &MlpSpec,
    w: &Weights,
    obs: &[f32],
    n: usize,
) -> (Vec<f32>, Vec<f32>) {
    if let Err(e) = check_weights(spec, w) {
        panic!("forward_reference: {e}");
    }
    assert_eq!(obs.len(), n * spec.obs_dim, "forward_reference: obs length");
    let mut policy = Vec::with_capacity(n * spec.action_dim);
    let mut value = Vec::with_capacity(n);
    for x in obs.chunks_exact(spec.obs_dim) {
        let (p, v) = forward_one(spec, w, x);
        policy.extend_from_slice(&p);
        value.push(v);
    }
    (policy, value)
}

fn forward_one(spec: &MlpSpec, w: &Weights, x: &[f32]) -> (Vec<f32>, f32) {
    let mut h = relu(linear(w, "input", x));
    for k in 0..spec.blocks {
        let inner = relu(linear(w, &format!("blocks.{k}.fc1"), &h));
        let out = linear(w, &format!("blocks.{k}.fc2"), &inner);
        h = relu(h.iter().zip(&out).map(|(a, b)| a + b).collect());
    }
    let policy = linear(w, "policy", &h);
    let vh = relu(linear(w, "value_hidden", &h));
    let value = linear(w, "value", &vh)[0].tanh();
    (policy, value)
}

/// `y = W x + b` for one sample, `W` stored `[out, in]`.
fn linear(w: &Weights, layer: &str, x: &[f32]) -> Vec<f32> {
    let weight = &w.0[&format!("{layer}.weight")].1;
    let bias = &w.0[&format!("{layer}.bias")].1;
    weight
        .chunks_exact(x.len())
        .zip(bias)
        .map(|(row, b)| b + row.iter().zip(x).map(|(a, b)| a * b).sum::<f32>())
        .collect()
}

fn relu(mut v: Vec<f32>) -> Vec<f32> {
    v.iter_mut().for_each(|x| *x = x.max(0.0));
    v
}

/// Test-only: tiny models with arbitrary I/O, to check that loaders refuse
/// models that do not fit the contract.
#[cfg(test)]
pub(crate) fn relu_passthrough(
    input: (&str, &[Option<usize>]),
    outputs: &[(&str, &[Option<usize>])],
) -> Vec<u8> {
    let graph = proto::GraphProto {
        name: "passthrough".into(),
        node: outputs
            .iter()
            .map(|(name, _)| proto::node("Relu", &[input.0], name))
            .collect(),
        input: vec![proto::value_info(input.0, input.1)],
        output: outputs
            .iter()
            .map(|(name, dims)| proto::value_info(name, dims))
            .collect(),
        ..Default::default()
    };
    proto::model(graph).encode_to_vec()
}

/// The subset of `onnx.proto` the exporter writes, with its field tags.
mod proto {
    use super::{BATCH_DIM, IR_VERSION, OPSET};

    /// `TensorProto.DataType.FLOAT`.
    const FLOAT: i32 = 1;
    /// `AttributeProto.AttributeType.INT`.
    const ATTR_INT: i32 = 2;

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ModelProto {
        #[prost(int64, tag = "1")]
        pub ir_version: i64,
        #[prost(string, tag = "2")]
        pub producer_name: String,
        #[prost(string, tag = "3")]
        pub producer_version: String,
        #[prost(message, optional, tag = "7")]
        pub graph: Option<GraphProto>,
        #[prost(message, repeated, tag = "8")]
        pub opset_import: Vec<OperatorSetIdProto>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct OperatorSetIdProto {
        #[prost(string, tag = "1")]
        pub domain: String,
        #[prost(int64, tag = "2")]
        pub version: i64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct GraphProto {
        #[prost(message, repeated, tag = "1")]
        pub node: Vec<NodeProto>,
        #[prost(string, tag = "2")]
        pub name: String,
        #[prost(message, repeated, tag = "5")]
        pub initializer: Vec<TensorProto>,
        #[prost(message, repeated, tag = "11")]
        pub input: Vec<ValueInfoProto>,
        #[prost(message, repeated, tag = "12")]
        pub output: Vec<ValueInfoProto>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NodeProto {
        #[prost(string, repeated, tag = "1")]
        pub input: Vec<String>,
        #[prost(string, repeated, tag = "2")]
        pub output: Vec<String>,
        #[prost(string, tag = "3")]
        pub name: String,
        #[prost(string, tag = "4")]
        pub op_type: String,
        #[prost(message, repeated, tag = "5")]
        pub attribute: Vec<AttributeProto>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct AttributeProto {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(int64, tag = "3")]
        pub i: i64,
        #[prost(int32, tag = "20")]
        pub r#type: i32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TensorProto {
        #[prost(int64, repeated, tag = "1")]
        pub dims: Vec<i64>,
        #[prost(int32, tag = "2")]
        pub data_type: i32,
        #[prost(string, tag = "8")]
        pub name: String,
        #[prost(bytes = "vec", tag = "9")]
        pub raw_data: Vec<u8>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ValueInfoProto {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(message, optional, tag = "2")]
        pub r#type: Option<TypeProto>,
    }

    /// Only the `tensor_type` arm of the `value` oneof.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TypeProto {
        #[prost(message, optional, tag = "1")]
        pub tensor_type: Option<TensorTypeProto>,
    }

    /// `TypeProto.Tensor`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TensorTypeProto {
        #[prost(int32, tag = "1")]
        pub elem_type: i32,
        #[prost(message, optional, tag = "2")]
        pub shape: Option<TensorShapeProto>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TensorShapeProto {
        #[prost(message, repeated, tag = "1")]
        pub dim: Vec<Dimension>,
    }

    /// `TensorShapeProto.Dimension`; the `value` oneof as two optionals,
    /// which encode the same on the wire.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Dimension {
        #[prost(int64, optional, tag = "1")]
        pub dim_value: Option<i64>,
        #[prost(string, optional, tag = "2")]
        pub dim_param: Option<String>,
    }

    pub fn model(graph: GraphProto) -> ModelProto {
        ModelProto {
            ir_version: IR_VERSION,
            producer_name: "selfplay".into(),
            producer_version: env!("CARGO_PKG_VERSION").into(),
            graph: Some(graph),
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: OPSET,
            }],
        }
    }

    /// A float32 initializer stored as little-endian `raw_data`.
    pub fn tensor(name: &str, shape: &[usize], data: &[f32]) -> TensorProto {
        TensorProto {
            dims: shape.iter().map(|&d| d as i64).collect(),
            data_type: FLOAT,
            name: name.into(),
            raw_data: data.iter().flat_map(|x| x.to_le_bytes()).collect(),
        }
    }

    /// A float32 graph input/output; `None` dims are the symbolic batch dim.
    pub fn value_info(name: &str, dims: &[Option<usize>]) -> ValueInfoProto {
        let dim = dims
            .iter()
            .map(|d| Dimension {
                dim_value: d.map(|v| v as i64),
                dim_param: d.is_none().then(|| BATCH_DIM.to_string()),
            })
            .collect();
        ValueInfoProto {
            name: name.into(),
            r#type: Some(TypeProto {
                tensor_type: Some(TensorTypeProto {
                    elem_type: FLOAT,
                    shape: Some(TensorShapeProto { dim }),
                }),
            }),
        }
    }

    /// A node named after its output, which is unique in the graph.
    pub fn node(op: &str, inputs: &[&str], output: &str) -> NodeProto {
        NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            name: format!("{output}/{op}"),
            op_type: op.into(),
            attribute: Vec::new(),
        }
    }

    /// `Gemm(x, w, b)` with `transB = 1`.
    pub fn gemm_trans_b(x: &str, w: &str, b: &str, output: &str) -> NodeProto {
        let mut gemm = node("Gemm", &[x, w, b], output);
        gemm.attribute.push(AttributeProto {
            name: "transB".into(),
            i: 1,
            r#type: ATTR_INT,
        });
        gemm
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Seeded weights with PyTorch's default `nn.Linear` init range.
    pub(crate) fn random_weights(spec: &MlpSpec, seed: u64) -> Weights {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut map = BTreeMap::new();
        let mut fan_in = 1;
        for (name, shape) in mlp_names(spec) {
            // Each bias follows its weight, so it reuses the weight's fan-in.
            if let [_, inp] = shape[..] {
                fan_in = inp;
            }
            let bound = 1.0 / (fan_in as f32).sqrt();
            let data = (0..shape.iter().product::<usize>())
                .map(|_| rng.random_range(-bound..bound))
                .collect();
            map.insert(name, (shape, data));
        }
        Weights(map)
    }

    pub(crate) fn spec(obs: usize, act: usize, hidden: usize, blocks: usize, vh: usize) -> MlpSpec {
        MlpSpec {
            obs_dim: obs,
            action_dim: act,
            hidden,
            blocks,
            value_hidden: vh,
        }
    }

    #[test]
    fn names_follow_spec() {
        let names = mlp_names(&spec(84, 60, 64, 2, 32));
        assert_eq!(names.len(), 2 + 2 * 4 + 6);
        assert_eq!(names[0], ("input.weight".to_string(), vec![64, 84]));
        assert_eq!(names[2], ("blocks.0.fc1.weight".to_string(), vec![64, 64]));
        assert_eq!(names.last().unwrap(), &("value.bias".to_string(), vec![1]));
    }

    #[test]
    fn check_weights_accepts_random_weights() {
        let s = spec(84, 60, 64, 2, 32);
        assert_eq!(check_weights(&s, &random_weights(&s, 1)), Ok(()));
    }

    #[test]
    fn check_weights_names_the_bad_tensor() {
        let s = spec(4, 3, 8, 1, 5);
        let good = random_weights(&s, 2);

        let mut w = good.clone();
        w.0.remove("blocks.0.fc2.bias");
        let e = check_weights(&s, &w).unwrap_err();
        assert!(e.contains("missing tensor `blocks.0.fc2.bias`"), "{e}");

        let mut w = good.clone();
        w.0.get_mut("policy.weight").unwrap().0 = vec![8, 3];
        let e = check_weights(&s, &w).unwrap_err();
        assert!(
            e.contains("`policy.weight` has shape [8, 3], expected [3, 8]"),
            "{e}"
        );

        let mut w = good.clone();
        w.0.get_mut("value.bias").unwrap().1.push(0.0);
        let e = check_weights(&s, &w).unwrap_err();
        assert!(e.contains("`value.bias` has 2 values"), "{e}");

        let e = check_weights(&spec(4, 3, 8, 0, 5), &good).unwrap_err();
        assert!(
            e.contains("unexpected tensors") && e.contains("blocks.0.fc1.weight"),
            "{e}"
        );

        let e = check_weights(&spec(4, 0, 8, 1, 5), &good).unwrap_err();
        assert!(e.contains("`action_dim` must be > 0"), "{e}");
    }

    #[test]
    fn export_refuses_bad_weights() {
        let s = spec(4, 3, 8, 1, 5);
        let e = export_mlp(&s, &Weights::default()).unwrap_err();
        assert!(e.contains("missing tensor `input.weight`"), "{e}");
    }

    #[test]
    fn export_writes_the_contract() {
        let s = spec(6, 4, 8, 2, 5);
        let bytes = export_mlp(&s, &random_weights(&s, 3)).unwrap();
        let model = proto::ModelProto::decode(bytes.as_slice()).unwrap();
        assert_eq!(
            (model.ir_version, model.producer_name.as_str()),
            (8, "selfplay")
        );
        assert_eq!(model.opset_import[0].version, 17);
        let graph = model.graph.unwrap();
        let io: Vec<&str> = graph
            .input
            .iter()
            .chain(&graph.output)
            .map(|v| v.name.as_str())
            .collect();
        assert_eq!(io, ["obs", "policy", "value"]);
        assert_eq!(graph.initializer.len(), mlp_names(&s).len());
        let ops: Vec<&str> = graph.node.iter().map(|n| n.op_type.as_str()).collect();
        assert_eq!(ops.iter().filter(|o| **o == "Gemm").count(), 1 + 2 * 2 + 3);
        assert_eq!(ops.last(), Some(&"Tanh"));
        let first = &graph.initializer[0];
        assert_eq!(first.raw_data.len(), 4 * 8 * 6);
    }

    #[test]
    fn reference_matches_hand_computation() {
        // obs_dim 1, hidden 1, one block: easy to follow by hand.
        let s = spec(1, 2, 1, 1, 1);
        let t = |shape: Vec<usize>, data: Vec<f32>| (shape, data);
        let w = Weights(BTreeMap::from([
            ("input.weight".into(), t(vec![1, 1], vec![2.0])),
            ("input.bias".into(), t(vec![1], vec![-1.0])),
            ("blocks.0.fc1.weight".into(), t(vec![1, 1], vec![1.0])),
            ("blocks.0.fc1.bias".into(), t(vec![1], vec![0.0])),
            ("blocks.0.fc2.weight".into(), t(vec![1, 1], vec![-3.0])),
            ("blocks.0.fc2.bias".into(), t(vec![1], vec![0.5])),
            ("policy.weight".into(), t(vec![2, 1], vec![1.0, -1.0])),
            ("policy.bias".into(), t(vec![2], vec![0.0, 0.25])),
            ("value_hidden.weight".into(), t(vec![1, 1], vec![1.0])),
            ("value_hidden.bias".into(), t(vec![1], vec![0.0])),
            ("value.weight".into(), t(vec![1, 1], vec![0.5])),
            ("value.bias".into(), t(vec![1], vec![0.0])),
        ]));
        // x = 1: h = relu(2 - 1) = 1, block: relu(1 + (-3 + 0.5)) = 0.
        // x = 3: h = 5, block: relu(5 + (-15 + 0.5)) = 0.
        let (p, v) = forward_reference(&s, &w, &[1.0, 3.0], 2);
        assert_eq!(p, [0.0, 0.25, 0.0, 0.25]);
        assert_eq!(v, [0.0, 0.0]);
        // fc2 weight +1: x = 1 gives h = 1, block: relu(1 + (1 + 0.5)) = 2.5,
        // value = tanh(0.5 * relu(2.5)).
        let mut w2 = w.clone();
        w2.0.get_mut("blocks.0.fc2.weight").unwrap().1[0] = 1.0;
        let (p, v) = forward_reference(&s, &w2, &[1.0], 1);
        assert_eq!(p, [2.5, -2.25]);
        assert_eq!(v, [(1.25f32).tanh()]);
    }
}
