// Gradients of a loss with respect to variables, as tf.variableGrads computes them, but freeing
// memory as the backward pass goes. TensorFlow.js keeps every tensor its tape saved, and every
// intermediate gradient, until the whole backward pass ends, so a step's peak holds the forward
// activations and the backward's gradients at once (a Qwen2.5-0.5B-shaped LoRA step at 4 x 512
// tokens: 11 GB of activations, 21 GB at the peak). Here each node's saved tensors are disposed
// once its gradient is computed, and each tensor's gradient once the node that produced the tensor
// has consumed it, so the backward pass hands memory back layer by layer.
//
// The walk is the engine's own (tape order reversed, the same gradient functions, sums in the same
// order), so the gradients are the same numbers; it reads the engine's tape, which TensorFlow.js
// keeps in `state.activeTape` while recording.

import * as tf from '@tensorflow/tfjs';

interface TapeNode {
  kernelName: string;
  inputs: Record<string, tf.Tensor>;
  outputs: tf.Tensor[];
  saved?: tf.Tensor[];
  gradient?: (dys: Array<tf.Tensor | null>) => Record<string, () => tf.Tensor>;
}

interface EngineInternals {
  state: { activeTape: TapeNode[] | null; gradientDepth: number };
  startTape(): void;
  endTape(): void;
  scopedRun<T>(start: () => void, end: () => void, f: () => T): T;
}

/** Called with a variable's gradient as soon as the backward pass has finished it (read it then: it is freed later). */
export type OnGradient = (variableName: string, gradient: tf.Tensor) => void;

/**
 * The loss f() and its gradient for each of `vars` that it depends on (by variable name, as
 * tf.variableGrads); as there, variables marked untrainable (a model's frozen parameters) get none.
 * `onGradient` sees each gradient the moment it is final, while the backward pass goes on (data
 * parallelism sends it then); the order is the tape's, the same for the same graph.
 */
export function variableGrads(f: () => tf.Scalar, all: tf.Variable[], onGradient?: OnGradient): { value: tf.Scalar; grads: tf.NamedTensorMap } {
  const vars = all.filter((v) => v.trainable);
  const engine = tf.engine() as unknown as EngineInternals;
  // inside another gradient computation (higher-order gradients): the engine's own walk
  if (engine.state.gradientDepth > 0 || engine.state.activeTape) {
    const out = tf.variableGrads(f, vars);
    if (onGradient) for (const [name, g] of Object.entries(out.grads)) onGradient(name, g);
    return out;
  }
  const value = engine.scopedRun(
    () => engine.startTape(),
    () => engine.endTape(),
    () => tf.tidy('forward', f),
  );
  const tape = recorded(engine);
  try {
    const grads = tf.tidy(() => backward(onPath(tape, vars, value), value, vars, onGradient));
    return { value, grads };
  } finally {
    for (const node of tape) for (const t of node.saved ?? []) t.dispose();
    engine.state.activeTape = null;
  }
}

function recorded(engine: EngineInternals): TapeNode[] {
  return engine.state.activeTape ?? [];
}

/** The nodes between the variables and y, each with only the inputs that depend on a variable. */
function onPath(tape: TapeNode[], xs: tf.Tensor[], y: tf.Tensor): TapeNode[] {
  const fromX = new Set(xs.map((x) => x.id));
  const nodeFromX = tape.map((node) => {
    const hit = Object.values(node.inputs).some((t) => fromX.has(t.id));
    if (hit) for (const o of node.outputs) fromX.add(o.id);
    return hit;
  });
  const toY = new Set([y.id]);
  const nodeToY: boolean[] = new Array(tape.length).fill(false);
  for (let i = tape.length - 1; i >= 0; i--) {
    const node = tape[i] as TapeNode;
    if (!node.outputs.some((o) => toY.has(o.id))) continue;
    nodeToY[i] = true;
    for (const t of Object.values(node.inputs)) toY.add(t.id);
  }
  return tape.flatMap((node, i) => {
    if (!nodeFromX[i] || !nodeToY[i]) return [];
    const inputs = Object.fromEntries(Object.entries(node.inputs).filter(([, t]) => fromX.has(t.id)));
    return [{ ...node, inputs }];
  });
}

function backward(nodes: TapeNode[], y: tf.Tensor, vars: tf.Variable[], onGradient?: OnGradient): tf.NamedTensorMap {
  // gradients by tensor id; one tensor may be the gradient of several (an add passes dy to both
  // inputs), so each is disposed when the last id holding it lets go
  const grad = new Map<number, tf.Tensor>();
  const holders = new Map<tf.Tensor, number>();
  const put = (id: number, t: tf.Tensor) => {
    grad.set(id, t);
    holders.set(t, (holders.get(t) ?? 0) + 1);
  };
  const drop = (id: number) => {
    const t = grad.get(id);
    if (!t) return;
    grad.delete(id);
    const n = (holders.get(t) ?? 1) - 1;
    if (n > 0) holders.set(t, n);
    else {
      holders.delete(t);
      t.dispose();
    }
  };
  const isVar = new Set(vars.map((v) => v.id));
  // a variable's gradient is final once the walk has passed the first node that reads it
  const finalAt = new Map<number, tf.Variable[]>();
  if (onGradient) {
    const seen = new Set<number>();
    const byId = new Map(vars.map((v) => [v.id, v]));
    nodes.forEach((node, i) => {
      for (const t of Object.values(node.inputs)) {
        const v = byId.get(t.id);
        if (!v || seen.has(v.id)) continue;
        seen.add(v.id);
        finalAt.set(i, [...(finalAt.get(i) ?? []), v]);
      }
    });
  }
  put(y.id, tf.onesLike(y));
  // Crucible's kernels of several outputs (the saved mean and rstd of a norm, a linear layer's input
  // kept in bf16) read only their first output's gradient; for the others the engine would make
  // zeros of their size (on gpt2-small with bf16 activations, 510 MB a step), so they get this
  const unread = tf.scalar(0);
  for (let i = nodes.length - 1; i >= 0; i--) {
    const node = nodes[i] as TapeNode;
    if (!node.gradient) throw new Error(`Cannot compute gradient: gradient function not found for ${node.kernelName}.`);
    const names = Object.keys(node.inputs);
    const ours = node.kernelName.startsWith('Crucible');
    const dys = node.outputs.map((o, k) => grad.get(o.id) ?? (ours && k > 0 ? unread : null));
    const gradient = node.gradient;
    const dxs = tf.tidy(() => {
      const fns = gradient(dys);
      return names.map((name) => {
        const fn = fns[name];
        if (!fn) throw new Error(`Cannot backprop through input ${name} of ${node.kernelName}. Available gradients: ${Object.keys(fns)}.`);
        return fn();
      });
    });
    names.forEach((name, k) => {
      const x = node.inputs[name] as tf.Tensor;
      const dx = dxs[k] as tf.Tensor;
      if (dx.dtype !== 'float32') throw new Error(`the gradient of ${node.kernelName}'s input ${name} has dtype ${dx.dtype}`);
      if (!tf.util.arraysEqual(dx.shape, x.shape))
        throw new Error(`the gradient of ${node.kernelName}'s input ${name} has shape [${dx.shape}], the input [${x.shape}]`);
      const prev = grad.get(x.id);
      if (!prev) {
        put(x.id, dx);
        return;
      }
      const sum = tf.add(prev, dx);
      drop(x.id);
      put(x.id, sum);
      if (!holders.has(dx)) dx.dispose();
    });
    // this node is done: its saved activations and its outputs' gradients are needed no more
    for (const t of node.saved ?? []) t.dispose();
    for (const o of node.outputs) if (!isVar.has(o.id)) drop(o.id);
    for (const v of finalAt.get(i) ?? []) {
      const g = grad.get(v.id);
      if (g) onGradient?.(v.name, g);
    }
  }
  const out: tf.NamedTensorMap = {};
  for (const v of vars) {
    const g = grad.get(v.id);
    if (g) out[v.name] = g;
  }
  return out;
}
