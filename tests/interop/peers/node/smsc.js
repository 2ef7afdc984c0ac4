'use strict';
// An independent SMSC (npm smpp server) for smsgw's interop tests.
// Usage: node smsc.js SYSTEM_ID PASSWORD. Listens on 127.0.0.1, any free port, and prints
// JSON lines: listening {port}, bind, submit_sm (what the library decoded), deliver_sm_resp,
// unbind, error. Answers submit_sm with ids "msg-1", "msg-2", ... Reads JSON commands:
// {"op":"deliver", "tag":..., fields of a deliver_sm with "text"|"hex" and optional "udh"}.
const smpp = require('smpp');
const { emit, describeMessage, shortMessage, onCommands } = require('./common');

const [systemId, password] = process.argv.slice(2);
let bound = null;
let nextId = 1;

function onBind(session, pdu) {
  const ok = pdu.system_id === systemId && pdu.password === password;
  emit({ event: 'bind', command: pdu.command, system_id: pdu.system_id, accepted: ok });
  if (!ok) {
    session.send(pdu.response({ command_status: smpp.ESME_RBINDFAIL }));
    return;
  }
  session.send(pdu.response({ system_id: 'node-smsc' }));
  bound = session;
}

const server = smpp.createServer({}, (session) => {
  session.on('error', (error) => emit({ event: 'error', message: String(error) }));
  session.on('bind_transceiver', (pdu) => onBind(session, pdu));
  session.on('enquire_link', (pdu) => session.send(pdu.response()));
  session.on('submit_sm', (pdu) => {
    const messageId = `msg-${nextId++}`;
    emit({ event: 'submit_sm', message_id: messageId, ...describeMessage(pdu) });
    session.send(pdu.response({ message_id: messageId }));
  });
  session.on('unbind', (pdu) => {
    emit({ event: 'unbind' });
    session.send(pdu.response());
    session.close();
  });
});

function deliver(command) {
  const fields = {
    source_addr: command.source_addr,
    source_addr_ton: command.source_addr_ton || 0,
    source_addr_npi: command.source_addr_npi || 0,
    destination_addr: command.destination_addr,
    esm_class: command.esm_class || 0,
    data_coding: command.data_coding || 0,
    short_message: shortMessage(command),
  };
  if (command.receipted_message_id !== undefined) {
    fields.receipted_message_id = command.receipted_message_id;
    fields.message_state = command.message_state;
  }
  bound.deliver_sm(fields, (pdu) => {
    emit({ event: 'deliver_sm_resp', tag: command.tag, command_status: pdu.command_status });
  });
}

onCommands((command) => {
  if (command.op === 'deliver') {
    deliver(command);
  }
});

server.listen(0, '127.0.0.1', () => emit({ event: 'listening', port: server.address().port }));
