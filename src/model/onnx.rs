//! ONNX export of any architecture, written by hand with prost: the shared
//! graph builder, weight checks, the exporter and the reference forward.
//!
//! Self-play workers run models through ONNX Runtime and must build without
//! libtorch, so the exporter is plain Rust: it turns named weights (PyTorch
//! layout, `[out, in]`) into a `ModelProto` with the fixed contract that
//! `crate::infer` checks on load (opset 17, IR 8, input `obs` `[N, obs_dim]`,
//! outputs `policy` `[N, action_dim]` and `value` `[N, 1]`).

use std::collections::BTreeMap;

use super::arch::GridView;
use super::ModelSpec;
use prost::Message;

/// ONNX operator set the graph is written against.
pub const OPSET: i64 = 17;
/// ONNX IR version (8 = 2021-07-30), understood by every current runtime.
pub const IR_VERSION: i64 = 8;
/// Symbolic name of the batch dimension.
pub const BATCH_DIM: &str = "N";

/// Named tensors: name -> (shape, row-major data).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Weights(pub BTreeMap<String, (Vec<usize>, Vec<f32>)>);

impl Weights {
    /// The data of tensor `name`, if present.
    pub fn data(&self, name: &str) -> Option<&[f32]> {
        self.0.get(name).map(|(_, data)| data.as_slice())
    }
}

/// Checks that `w` holds exactly the tensors of `spec`, each with the right
/// shape and length, so a checkpoint from another architecture is refused
/// instead of exported into a model that computes something else.
pub fn check_weights(spec: &ModelSpec, w: &Weights) -> Result<(), String> {
    spec.check()?;
    let expected = spec.parameters();
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

/// Serialises the network as ONNX `ModelProto` bytes. `metadata_props`
/// record the model id (when given), the architecture and its config, the
/// input layout with the family order of its one-hot tag, and that
/// `policy` holds logits.
pub fn export(spec: &ModelSpec, w: &Weights, model_id: Option<&str>) -> Result<Vec<u8>, String> {
    check_weights(spec, w)?;
    let arch = spec.arch();
    let mut g = GraphBuilder::new(w);
    arch.graph(&spec.dims(), &mut g);
    let graph = proto::GraphProto {
        name: format!("selfplay_{}", arch.name()),
        node: g.nodes,
        initializer: g.initializers,
        input: vec![proto::value_info("obs", &[None, Some(spec.obs_dim)])],
        output: vec![
            proto::value_info("policy", &[None, Some(spec.action_dim)]),
            proto::value_info("value", &[None, Some(1)]),
        ],
    };
    let mut model = proto::model(graph);
    let config = serde_json::to_string(&spec.model).map_err(|e| e.to_string())?;
    let mut props = vec![
        ("arch", arch.name().to_string()),
        ("model_config", config),
        ("input_layout", super::INPUT_LAYOUT.to_string()),
        ("families", super::input_families().join(",")),
        ("policy", "logits".to_string()),
    ];
    if let Some(id) = model_id {
        props.insert(0, ("model_id", id.to_string()));
    }
    model.metadata_props = props
        .into_iter()
        .map(|(key, value)| proto::StringStringEntryProto {
            key: key.into(),
            value,
        })
        .collect();
    Ok(model.encode_to_vec())
}

/// A node attribute.
#[derive(Clone, Debug)]
pub enum Attr {
    Int(&'static str, i64),
    Ints(&'static str, Vec<i64>),
    Float(&'static str, f32),
}

/// The shared ONNX graph builder: appends nodes, each named after its
/// (unique) output, and returns the output name for chaining. Weights
/// become initializers the first time an op names them.
pub struct GraphBuilder<'w> {
    weights: &'w Weights,
    nodes: Vec<proto::NodeProto>,
    initializers: Vec<proto::TensorProto>,
    defined: std::collections::BTreeSet<String>,
}

impl<'w> GraphBuilder<'w> {
    pub fn new(weights: &'w Weights) -> GraphBuilder<'w> {
        GraphBuilder {
            weights,
            nodes: Vec::new(),
            initializers: Vec::new(),
            defined: Default::default(),
        }
    }

    /// The weights being exported, for tensors derived from them.
    pub fn weights(&self) -> &'w Weights {
        self.weights
    }

    /// The parameter `name` as an initializer (added once); returns its name.
    ///
    /// # Panics
    /// If the weights lack it: [`export`] checks them against the
    /// architecture's parameter list first.
    pub fn param(&mut self, name: &str) -> String {
        if self.defined.insert(name.to_string()) {
            let (shape, data) = &self.weights.0[name];
            self.initializers.push(proto::tensor(name, shape, data));
        }
        name.to_string()
    }

    /// A float tensor computed at export time, as an initializer.
    pub fn constant(&mut self, name: &str, shape: &[usize], data: &[f32]) -> String {
        assert!(
            self.defined.insert(name.to_string()),
            "{name} defined twice"
        );
        self.initializers.push(proto::tensor(name, shape, data));
        name.to_string()
    }

    /// An int64 tensor (indices, shapes) as an initializer.
    pub fn constant_i64(&mut self, name: &str, shape: &[usize], data: &[i64]) -> String {
        assert!(
            self.defined.insert(name.to_string()),
            "{name} defined twice"
        );
        self.initializers.push(proto::tensor_i64(name, shape, data));
        name.to_string()
    }

    /// A node of any operator without attributes.
    pub fn node(&mut self, op: &str, inputs: &[&str], output: &str) -> String {
        self.node_with(op, inputs, output, &[])
    }

    /// A node of any operator with attributes.
    pub fn node_with(&mut self, op: &str, inputs: &[&str], output: &str, attrs: &[Attr]) -> String {
        let mut node = proto::node(op, inputs, output);
        node.attribute = attrs.iter().map(proto::attribute).collect();
        self.nodes.push(node);
        output.to_string()
    }

    /// `x W^T + b` (a `Gemm` with `transB = 1`), as PyTorch's `nn.Linear`
    /// stores `W` as `[out, in]`: parameters `{layer}.weight`, `{layer}.bias`.
    pub fn linear(&mut self, x: &str, layer: &str, output: &str) -> String {
        let weight = self.param(&format!("{layer}.weight"));
        let bias = self.param(&format!("{layer}.bias"));
        self.node_with(
            "Gemm",
            &[x, &weight, &bias],
            output,
            &[Attr::Int("transB", 1)],
        )
    }

    /// `relu(linear(x))`, outputs `{layer}/out` and `{layer}/relu`.
    pub fn linear_relu(&mut self, x: &str, layer: &str) -> String {
        let pre = self.linear(x, layer, &format!("{layer}/out"));
        self.relu(&pre, &format!("{layer}/relu"))
    }

    /// A 2-D convolution, stride 1, zero padding `pad` on every side, of
    /// `x` `[N, C, H, W]` with initializers `weight` `[O, C, k, k]` and `bias` `[O]`.
    pub fn conv(
        &mut self,
        x: &str,
        weight: &str,
        bias: &str,
        kernel: usize,
        pad: usize,
        output: &str,
    ) -> String {
        let (k, p) = (kernel as i64, pad as i64);
        let attrs = [
            Attr::Ints("kernel_shape", vec![k, k]),
            Attr::Ints("pads", vec![p, p, p, p]),
        ];
        self.node_with("Conv", &[x, weight, bias], output, &attrs)
    }

    pub fn relu(&mut self, x: &str, output: &str) -> String {
        self.node("Relu", &[x], output)
    }

    pub fn tanh(&mut self, x: &str, output: &str) -> String {
        self.node("Tanh", &[x], output)
    }

    /// Elementwise `a + b` (with ONNX broadcasting).
    pub fn add(&mut self, a: &str, b: &str, output: &str) -> String {
        self.node("Add", &[a, b], output)
    }

    /// Elementwise `a * b` (with ONNX broadcasting).
    pub fn mul(&mut self, a: &str, b: &str, output: &str) -> String {
        self.node("Mul", &[a, b], output)
    }

    /// Columns `start..end` of a `[N, D]` tensor.
    pub fn columns(&mut self, x: &str, start: usize, end: usize, output: &str) -> String {
        let s = self.constant_i64(&format!("{output}/starts"), &[1], &[start as i64]);
        let e = self.constant_i64(&format!("{output}/ends"), &[1], &[end as i64]);
        let a = self.constant_i64(&format!("{output}/axes"), &[1], &[1]);
        self.node("Slice", &[x, &s, &e, &a], output)
    }

    /// `x` reshaped to `shape` (`-1` and `0` as in ONNX `Reshape`).
    pub fn reshape(&mut self, x: &str, shape: &[i64], output: &str) -> String {
        let s = self.constant_i64(&format!("{output}/shape"), &[shape.len()], shape);
        self.node("Reshape", &[x, &s], output)
    }

    /// The grid view of the `[N, obs_dim]` input `x` as `[N, planes, H, W]`
    /// (see [`GridView`]).
    pub fn grid_canvas(&mut self, x: &str, grid: &GridView, output: &str) -> String {
        let mut sum: Option<String> = None;
        for (k, s) in grid.sources.iter().enumerate() {
            let (index, mask) = grid.gather(s);
            let at = format!("{output}/source{k}");
            let idx = self.constant_i64(&format!("{at}/index"), &[index.len()], &index);
            let gathered = self.node_with(
                "Gather",
                &[x, &idx],
                &format!("{at}/gather"),
                &[Attr::Int("axis", 1)],
            );
            let m = self.constant(&format!("{at}/mask"), &[mask.len()], &mask);
            let masked = self.mul(&gathered, &m, &format!("{at}/masked"));
            let tag = self.columns(x, s.tag, s.tag + 1, &format!("{at}/tag"));
            let part = self.mul(&masked, &tag, &format!("{at}/out"));
            sum = Some(match sum {
                None => part,
                Some(prev) => self.add(&prev, &part, &format!("{at}/sum")),
            });
        }
        let flat = sum.expect("a grid view has at least one source");
        let shape = [
            -1,
            grid.planes() as i64,
            grid.height as i64,
            grid.width as i64,
        ];
        self.reshape(&flat, &shape, output)
    }
}

/// Plain-Rust forward pass of the same network, the reference for tests.
///
/// Returns `(policy [n * action_dim], value [n])`.
///
/// # Panics
/// If `w` does not match `spec` or `obs.len() != n * obs_dim`; call
/// [`check_weights`] first on weights that come from outside.
pub fn forward_reference(
    spec: &ModelSpec,
    w: &Weights,
    obs: &[f32],
    n: usize,
) -> (Vec<f32>, Vec<f32>) {
    if let Err(e) = check_weights(spec, w) {
        panic!("forward_reference: {e}");
    }
    assert_eq!(obs.len(), n * spec.obs_dim, "forward_reference: obs length");
    let (arch, dims) = (spec.arch(), spec.dims());
    let mut policy = Vec::with_capacity(n * spec.action_dim);
    let mut value = Vec::with_capacity(n);
    for x in obs.chunks_exact(spec.obs_dim) {
        let (p, v) = arch.forward_one(&dims, w, x);
        assert_eq!(p.len(), spec.action_dim, "forward_reference: policy length");
        policy.extend_from_slice(&p);
        value.push(v);
    }
    (policy, value)
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
    /// `TensorProto.DataType.INT64`.
    const INT64: i32 = 7;
    /// `AttributeProto.AttributeType` values.
    const ATTR_FLOAT: i32 = 1;
    const ATTR_INT: i32 = 2;
    const ATTR_INTS: i32 = 7;

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
        #[prost(message, repeated, tag = "14")]
        pub metadata_props: Vec<StringStringEntryProto>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct StringStringEntryProto {
        #[prost(string, tag = "1")]
        pub key: String,
        #[prost(string, tag = "2")]
        pub value: String,
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
        #[prost(float, tag = "2")]
        pub f: f32,
        #[prost(int64, tag = "3")]
        pub i: i64,
        #[prost(int64, repeated, tag = "8")]
        pub ints: Vec<i64>,
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
            metadata_props: Vec::new(),
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

    /// An attribute of a node.
    pub fn attribute(a: &super::Attr) -> AttributeProto {
        use super::Attr;
        let (name, r#type) = match a {
            Attr::Int(n, _) => (n, ATTR_INT),
            Attr::Ints(n, _) => (n, ATTR_INTS),
            Attr::Float(n, _) => (n, ATTR_FLOAT),
        };
        let mut out = AttributeProto {
            name: name.to_string(),
            r#type,
            ..Default::default()
        };
        match a {
            Attr::Int(_, i) => out.i = *i,
            Attr::Ints(_, v) => out.ints = v.clone(),
            Attr::Float(_, f) => out.f = *f,
        }
        out
    }

    /// An int64 initializer stored as little-endian `raw_data`.
    pub fn tensor_i64(name: &str, shape: &[usize], data: &[i64]) -> TensorProto {
        TensorProto {
            dims: shape.iter().map(|&d| d as i64).collect(),
            data_type: INT64,
            name: name.into(),
            raw_data: data.iter().flat_map(|x| x.to_le_bytes()).collect(),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::mlp::MlpConfig;
    use crate::model::ArchConfig;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Seeded weights with PyTorch's default `nn.Linear` init range.
    pub(crate) fn random_weights(spec: &ModelSpec, seed: u64) -> Weights {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut map = BTreeMap::new();
        let mut fan_in = 1;
        for (name, shape) in spec.parameters() {
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

    /// An `mlp` spec.
    pub(crate) fn spec(
        obs: usize,
        act: usize,
        hidden: usize,
        blocks: usize,
        vh: usize,
    ) -> ModelSpec {
        ModelSpec {
            obs_dim: obs,
            action_dim: act,
            grid: None,
            model: ArchConfig::Mlp(MlpConfig {
                hidden,
                blocks,
                value_hidden: vh,
                value_bins: 0,
            }),
        }
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
        let e = check_weights(&spec(4, 3, 0, 1, 5), &good).unwrap_err();
        assert!(e.contains("model.hidden = 0"), "{e}");
    }

    #[test]
    fn export_refuses_bad_weights() {
        let s = spec(4, 3, 8, 1, 5);
        let e = export(&s, &Weights::default(), None).unwrap_err();
        assert!(e.contains("missing tensor `input.weight`"), "{e}");
    }

    #[test]
    fn export_writes_the_contract() {
        let s = spec(6, 4, 8, 2, 5);
        let bytes = export(&s, &random_weights(&s, 3), Some("iteration=000004")).unwrap();
        let model = proto::ModelProto::decode(bytes.as_slice()).unwrap();
        assert_eq!(
            (model.ir_version, model.producer_name.as_str()),
            (8, "selfplay")
        );
        assert_eq!(model.opset_import[0].version, 17);
        let graph = model.graph.unwrap();
        assert_eq!(graph.name, "selfplay_mlp");
        let io: Vec<&str> = graph
            .input
            .iter()
            .chain(&graph.output)
            .map(|v| v.name.as_str())
            .collect();
        assert_eq!(io, ["obs", "policy", "value"]);
        assert_eq!(graph.initializer.len(), s.parameters().len());
        let ops: Vec<&str> = graph.node.iter().map(|n| n.op_type.as_str()).collect();
        assert_eq!(ops.iter().filter(|o| **o == "Gemm").count(), 1 + 2 * 2 + 3);
        assert_eq!(ops.last(), Some(&"Tanh"));
        let first = &graph.initializer[0];
        assert_eq!(first.raw_data.len(), 4 * 8 * 6);
    }

    /// The ONNX file says what it is: id, architecture, input layout and
    /// the family order of the one-hot tag, and that `policy` is logits.
    #[test]
    fn export_writes_metadata() {
        let s = spec(6, 4, 8, 1, 5);
        let w = random_weights(&s, 3);
        let props = |id| {
            let bytes = export(&s, &w, id).unwrap();
            let model = proto::ModelProto::decode(bytes.as_slice()).unwrap();
            model
                .metadata_props
                .into_iter()
                .map(|p| (p.key, p.value))
                .collect::<BTreeMap<String, String>>()
        };
        let p = props(Some("iteration=000002"));
        assert_eq!(p["model_id"], "iteration=000002");
        assert_eq!(p["arch"], "mlp");
        assert_eq!(
            p["model_config"],
            r#"{"arch":"mlp","hidden":8,"blocks":1,"value_hidden":5,"value_bins":0}"#
        );
        assert_eq!(p["input_layout"], crate::model::INPUT_LAYOUT.to_string());
        let families: Vec<&str> = crate::tasks::Family::ALL.iter().map(|f| f.name()).collect();
        assert_eq!(p["families"], families.join(","));
        assert_eq!(p["policy"], "logits");
        assert!(!props(None).contains_key("model_id"));
    }
}
