'use strict';
// An independent ESME (npm smpp client) for smsgw's interop tests.
// Usage: node esme.js PORT SYSTEM_ID PASSWORD. Binds as transceiver to 127.0.0.1:PORT and
// prints JSON lines: bound, submit_sm_resp, deliver_sm, unbound, error. Reads JSON commands:
// {"op":"submit", "tag":..., "data_coding":..., "esm_class":..., "text"|"hex", "udh"?, ...}
// and {"op":"unbind"}.
const smpp = require('smpp');
const { emit, describeMessage, shortMessage, onCommands } = require('./common');

const [port, systemId, password] = process.argv.slice(2);
const session = smpp.connect({ url: `smpp://127.0.0.1:${port}`, auto_enquire_link_period: 0 });

session.on('error', (error) => emit({ event: 'error', message: String(error) }));
session.on('close', () => emit({ event: 'closed' }));
session.on('deliver_sm', (pdu) => {
  emit({ event: 'deliver_sm', ...describeMessage(pdu) });
  session.send(pdu.response());
});

session.on('connect', () => {
  session.bind_transceiver({ system_id: systemId, password: password }, (pdu) => {
    emit({ event: 'bound', command_status: pdu.command_status, system_id: pdu.system_id });
  });
});

function submit(command) {
  const fields = {
    source_addr: command.source_addr || '',
    source_addr_ton: command.source_addr_ton || 0,
    source_addr_npi: command.source_addr_npi || 0,
    destination_addr: command.destination_addr,
    dest_addr_ton: 1,
    dest_addr_npi: 1,
    esm_class: command.esm_class || 0,
    registered_delivery: 1,
    data_coding: command.data_coding,
    short_message: shortMessage(command),
  };
  session.submit_sm(fields, (pdu) => {
    emit({
      event: 'submit_sm_resp',
      tag: command.tag,
      command_status: pdu.command_status,
      message_id: pdu.message_id,
    });
  });
}

onCommands((command) => {
  if (command.op === 'submit') {
    submit(command);
  } else if (command.op === 'unbind') {
    session.unbind(() => {
      emit({ event: 'unbound' });
      session.close();
    });
  }
});
