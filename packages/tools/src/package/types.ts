import type { LambdaArchitecture } from '../deploy/types.js';

export interface PackageOptions {
  /** The root the plan was made with: sources, copyFiles and bundle paths are relative to it. */
  root: string;
  /** Write `<outDir>/<function name>/` instead of each function's planned `bundle` folder (tests). */
  outDir?: string;
  /** Package only these functions (logical names); default every function of the plan. */
  only?: string[];
  log?: (line: string) => void;
}

/** Where the native packages come from and which platform they must run on. */
export interface TargetPlatform {
  os: 'linux';
  architecture: LambdaArchitecture;
}

export interface PackagedFunction {
  name: string;
  /** Absolute path of the function's folder: what Lambda unpacks into LAMBDA_TASK_ROOT. */
  dir: string;
  /** The bundled handler file, relative to `dir`. */
  handlerFile: string;
  /** Unzipped size, as Lambda counts it against its 250 MB limit. */
  bytes: number;
  files: number;
  /** The source files bundled into the handler, relative to the root (what its dependency closure holds). */
  sources: string[];
}
