import { describe, expect, it } from 'vitest';
import { gatewayConfig } from '../../src/agent/config.js';
import { LinkRoutes, routeProblems } from '../../src/comms/link-routes.js';
import { P2PError } from '../../src/core/errors.js';

describe('routing table of a hybrid transport', () => {
  it('sends each class over the links its route names, the rest over the default, presence over every link', () => {
    // The paper's ICT layout: control data over D2D between neighbours, trading over the uplink.
    const routes = new LinkRoutes(['mqtt', 'd2d'], { gossip: 'd2d', dr: ['d2d', 'mqtt'] });
    expect(routes.table()).toEqual({
      life: ['mqtt', 'd2d'],
      mkt: ['mqtt'],
      dr: ['d2d', 'mqtt'],
      gossip: ['d2d'],
      meter: ['mqtt'],
      cmd: ['mqtt'],
      settle: ['mqtt'],
    });
    expect(routes.carries('d2d', 'gossip')).toBe(true);
    expect(routes.carries('mqtt', 'gossip')).toBe(false);
  });

  it('takes the default from the config, else the broker, else the only link', () => {
    expect(new LinkRoutes(['mqtt', 'd2d'], { default: 'd2d', mkt: 'mqtt' }).linksFor('settle')).toEqual(['d2d']);
    expect(new LinkRoutes(['mqtt', 'd2d']).linksFor('gossip')).toEqual(['mqtt']);
    expect(new LinkRoutes(['d2d']).linksFor('mkt')).toEqual(['d2d']);
    expect(new LinkRoutes(['mqtt', 'd2d'], { meter: ['mqtt', 'mqtt'] }).linksFor('meter')).toEqual(['mqtt']);
  });

  it('names the field of every wrong route', () => {
    expect(routeProblems({ gossip: 'd2d', voltage: 'd2d', life: 'mqtt', mkt: 'lte', dr: [] }, ['mqtt'])).toEqual([
      {
        field: 'comms.routes.gossip',
        message: 'routes to link "d2d", which is not configured (add a comms.d2d section)',
      },
      {
        field: 'comms.routes.voltage',
        message: 'unknown message class "voltage" (classes: mkt, dr, gossip, meter, cmd, settle, or default)',
      },
      { field: 'comms.routes.life', message: 'presence (life) goes on every link and takes no route' },
      { field: 'comms.routes.mkt', message: 'unknown link "lte" (links: mqtt, d2d)' },
      { field: 'comms.routes.dr', message: 'names no link' },
    ]);
    expect(routeProblems({ default: 'd2d' }, ['mqtt'])[0]?.field).toBe('comms.routes.default');
    const thrown = (() => {
      try {
        new LinkRoutes(['mqtt'], { gossip: 'd2d' });
      } catch (err) {
        return err;
      }
    })();
    expect(thrown).toBeInstanceOf(P2PError);
    expect((thrown as P2PError).field).toBe('comms.routes.gossip');
  });

  it('is checked with the config: a hybrid transport needs its links, routes need a hybrid transport', () => {
    const gateway = { id: 'g1', kind: 'inverter' as const, cell: 'c1' };
    const good = gatewayConfig({
      gateway,
      comms: {
        transport: 'hybrid',
        mqtt: { url: 'mqtt://127.0.0.1:1883' },
        d2d: { interface: 'd2d0' },
        routes: { gossip: 'd2d' },
        security: { unsigned: true },
      },
    });
    expect(good.comms.routes).toEqual({ gossip: 'd2d' });
    expect(() =>
      gatewayConfig({
        gateway,
        comms: { transport: 'hybrid', mqtt: { url: 'mqtt://x:1' }, routes: { gossip: 'd2d' } },
      }),
    ).toThrow(/comms\.routes\.gossip.*routes to link "d2d", which is not configured/);
    expect(() => gatewayConfig({ gateway, comms: { transport: 'hybrid' } })).toThrow(
      /comms\.transport.*needs its links/,
    );
    expect(() =>
      gatewayConfig({ gateway, comms: { transport: 'mqtt', mqtt: { url: 'mqtt://x:1' }, routes: { gossip: 'mqtt' } } }),
    ).toThrow(/comms\.routes.*only with transport "hybrid"/);
  });
});
