export * from './tensor';
export * from './create';
export * from './grad';
export * from './scope';
export { TorchError } from './errors';
export { setNumThreads, getNumThreads, fmaPeak } from './native';
