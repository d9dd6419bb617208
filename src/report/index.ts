export * from './format';

export * from './svg-chart';
export * from './plots';
export * from './png';
export * from './markdown';
export * from './html-report';
