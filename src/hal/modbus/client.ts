import modbusSerial from 'modbus-serial';

/**
 * modbus-serial is CommonJS: its module object is the client class itself, with the servers as
 * properties. These typed handles keep that detail in one place.
 */
type ModbusRTU = InstanceType<(typeof modbusSerial)['default']>;
export type ModbusClient = ModbusRTU;
const moduleObject = modbusSerial as unknown as {
  default: new () => ModbusRTU;
  ServerTCP: typeof import('modbus-serial').ServerTCP;
  ServerSerial: typeof import('modbus-serial').ServerSerial;
};

export function newModbusClient(): ModbusClient {
  return new moduleObject.default();
}

export const ModbusServerTCP = moduleObject.ServerTCP;
export const ModbusServerSerial = moduleObject.ServerSerial;
