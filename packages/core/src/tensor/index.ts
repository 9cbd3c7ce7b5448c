export type { Datatype, NumericData, Tensor, TensorData, Item } from './types.js';
export { DATATYPES } from './types.js';
export {
  allocate, arrayTypeFor, bytesOf, bytesPerElement, checkTensor, dataMatches, elementCount, isDatatype,
  tensorProblem, typedArrayFor,
} from './datatypes.js';
export { fromHalfBits, toHalfBits } from './fp16.js';
export { concatRows, emptyRows, splitRows, stackRows } from './rows.js';
export type { StackOptions } from './rows.js';
export type * from './protocol.js';
export {
  INFERENCE_HEADER_CONTENT_LENGTH, decodeInferRequest, decodeInferResponse, encodeInferRequest, encodeInferResponse,
  parseHeaderLength, wantsBinaryOutput,
} from './codec.js';
export type { EncodeRequestOptions, EncodedBody, TensorToEncode } from './codec.js';
export { jsonEncodable } from './json-data.js';
