/**
 * JSON shapes of the Open Inference Protocol v2 REST API (KServe / Triton),
 * with the binary tensor data extension's parameters spelled out.
 */
import type { Datatype } from './types.js';

/** Free-form parameters; values are JSON (string, number, boolean, ...). */
export type InferParameters = Record<string, unknown>;

/**
 * Tensor elements in JSON: flat (row-major) or nested arrays of numbers,
 * booleans (BOOL) or strings (BYTES; INT64/UINT64 beyond 2^53; "NaN",
 * "Infinity", "-Infinity" for floats).
 */
export type JsonTensorData = unknown[];

/** Parameters of a request input or a response output. */
export interface TensorParameters extends InferParameters {
  /** Binary extension: this tensor's bytes follow the JSON header instead of `data`. */
  binary_data_size?: number;
}

export interface InferInputJson {
  name: string;
  shape: number[];
  datatype: Datatype;
  parameters?: TensorParameters;
  /** Absent when the input is sent as binary (and after decodeInferRequest, which moves it into a Tensor). */
  data?: JsonTensorData;
}

export interface InferRequestedOutputJson {
  name: string;
  /** `binary_data: true` asks for this output in binary form. */
  parameters?: InferParameters & { binary_data?: boolean };
}

export interface InferRequestJson {
  id?: string;
  /** `binary_data_output: true` asks for every output in binary form. */
  parameters?: InferParameters & { binary_data_output?: boolean };
  inputs: InferInputJson[];
  /** When present, only these outputs are returned. */
  outputs?: InferRequestedOutputJson[];
}

export interface InferOutputJson {
  name: string;
  shape: number[];
  datatype: Datatype;
  parameters?: TensorParameters;
  data?: JsonTensorData;
}

export interface InferResponseJson {
  model_name: string;
  model_version?: string;
  id?: string;
  parameters?: InferParameters;
  outputs: InferOutputJson[];
}

/** An input or output in model metadata; -1 marks a variable dim. */
export interface MetadataTensorJson {
  name: string;
  datatype: Datatype;
  shape: number[];
}

/** GET /v2/models/{name}[/versions/{v}] */
export interface ModelMetadataJson {
  name: string;
  versions?: string[];
  platform: string;
  inputs: MetadataTensorJson[];
  outputs: MetadataTensorJson[];
}

/** GET /v2 */
export interface ServerMetadataJson {
  name: string;
  version: string;
  extensions: string[];
}

/** Body of every error response. */
export interface ErrorJson {
  error: string;
}
