// Public API of ztw.
export * from './tensor';
export * as nn from './nn';
export * as optim from './optim';
export * from './io';
export * from './models';
export * from './exits';
export * from './runtime/early-exit';
export * from './runtime/policy';
export * as data from './data';
export * as evaluation from './eval';
export * as report from './report';
export * as training from './train';
export * from './export/export';
export * from './runtime/onnx';
