export { consoleMounts, VIEW_PATHS, type ConsoleOptions } from './routes.js';
export { pipelineView, type PipelineView, type StageView, type StageLive, type TensorView } from './pipeline-view.js';
