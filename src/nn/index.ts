export * from './module';
export * from './layers';
export * as F from './functional';
export * as init from './init';
export * as profiler from './profiler';
export * from './fused';
