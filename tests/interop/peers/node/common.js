'use strict';
// Shared by esme.js and smsc.js: JSON lines out (one event per line), JSON lines in (commands).
const readline = require('readline');

function emit(event) {
  process.stdout.write(JSON.stringify(event) + '\n');
}

function hex(value) {
  return Buffer.isBuffer(value) ? value.toString('hex') : null;
}

// What the npm smpp library decoded from a submit_sm / deliver_sm, in plain JSON.
function describeMessage(pdu) {
  const sm = pdu.short_message || {};
  const message = sm.message !== undefined ? sm.message : sm;
  return {
    command: pdu.command,
    sequence_number: pdu.sequence_number,
    source_addr: pdu.source_addr,
    source_addr_ton: pdu.source_addr_ton,
    source_addr_npi: pdu.source_addr_npi,
    destination_addr: pdu.destination_addr,
    dest_addr_ton: pdu.dest_addr_ton,
    dest_addr_npi: pdu.dest_addr_npi,
    esm_class: pdu.esm_class,
    registered_delivery: pdu.registered_delivery,
    data_coding: pdu.data_coding,
    text: typeof message === 'string' ? message : null,
    octets: hex(message),
    udh: (sm.udh || []).map((element) => element.toString('hex')),
    receipted_message_id: pdu.receipted_message_id || null,
    message_state: pdu.message_state === undefined ? null : pdu.message_state,
    sar_msg_ref_num: pdu.sar_msg_ref_num === undefined ? null : pdu.sar_msg_ref_num,
    sar_total_segments: pdu.sar_total_segments === undefined ? null : pdu.sar_total_segments,
    sar_segment_seqnum: pdu.sar_segment_seqnum === undefined ? null : pdu.sar_segment_seqnum,
  };
}

// A command's short_message: {"hex": ...} is sent as raw octets, {"text", "udh"} is encoded
// by the library according to data_coding.
function shortMessage(command) {
  if (command.hex !== undefined) {
    return Buffer.from(command.hex, 'hex');
  }
  if (command.udh) {
    return { udh: Buffer.from(command.udh, 'hex'), message: command.text };
  }
  return command.text;
}

function onCommands(handle) {
  const lines = readline.createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    try {
      handle(JSON.parse(line));
    } catch (error) {
      emit({ event: 'error', message: String(error && error.stack ? error.stack : error) });
    }
  });
  lines.on('close', () => process.exit(0));
}

module.exports = { emit, describeMessage, shortMessage, onCommands };
