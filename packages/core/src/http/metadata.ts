import type { Manifest } from '../manifest/types.js';

export const SERVER_NAME = 'ensemble';
export const SERVER_VERSION = '0.1.0';

export function serverMetadata() {
  return { name: SERVER_NAME, version: SERVER_VERSION, extensions: ['binary_tensor_data', 'runs'] };
}

/** OIP model metadata, plus the stage list (an extension field clients may ignore). */
export function modelMetadata(m: Manifest) {
  return {
    name: m.name,
    versions: [m.version],
    platform: 'ensemble',
    inputs: m.inputs.map(({ name, datatype, shape }) => ({ name, datatype, shape })),
    outputs: m.outputs.map(({ name, datatype, shape }) => ({ name, datatype, shape })),
    stages: m.stages.map((s) => ({ name: s.name, kind: s.kind, inputs: Object.values(s.inputs), outputs: Object.values(s.outputs), max_batch_size: s.batch.maxSize, instances: s.scale.instances })),
  };
}
