// A form field: its label, the input, a hint, and the place its error is
// shown (#err-NAME), the input with id f-NAME, named NAME unless it has a
// name already.
import { h } from './dom.js';

export function field(name, label, input, hint) {
  input.id = 'f-' + name;
  if (!input.name) input.name = name;
  input.setAttribute('aria-describedby', `err-${name}` + (hint ? ` hint-${name}` : ''));
  return h('div', { class: 'field', dataset: { field: name } },
    h('label', { for: 'f-' + name, text: label }), input,
    hint ? h('p', { class: 'hint', id: 'hint-' + name, text: hint }) : null,
    h('p', { class: 'field-error', id: 'err-' + name, 'aria-live': 'polite' }));
}
