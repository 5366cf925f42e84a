// A desktop notification service for the tests: it owns `org.freedesktop.Notifications` on the
// test's session bus, as a desktop's notification daemon does, and records what it is asked to
// show.
import dbus from 'dbus-next';

const { Interface } = dbus.interface;

class NotificationService extends Interface {
  constructor(received) {
    super('org.freedesktop.Notifications');
    this.received = received;
    this.lastId = 0;
  }

  Notify(appName, replacesId, icon, summary, body) {
    this.received.push({ appName, summary, body, at: Date.now() });
    this.lastId += 1;
    return this.lastId;
  }

  GetCapabilities() {
    return ['body'];
  }

  GetServerInformation() {
    return ['uplink-tests', 'Uplink', '1', '1.2'];
  }

  CloseNotification() {}
}

NotificationService.configureMembers({
  methods: {
    Notify: { inSignature: 'susssasa{sv}i', outSignature: 'u' },
    GetCapabilities: { inSignature: '', outSignature: 'as' },
    GetServerInformation: { inSignature: '', outSignature: 'ssss' },
    CloseNotification: { inSignature: 'u', outSignature: '' },
  },
});

/** Serves notifications on the session bus; `received` lists each one shown, oldest first. */
export async function serveNotifications() {
  const bus = dbus.sessionBus();
  const received = [];
  bus.export('/org/freedesktop/Notifications', new NotificationService(received));
  const reply = await bus.requestName('org.freedesktop.Notifications', dbus.NameFlag.DO_NOT_QUEUE);
  if (reply !== dbus.RequestNameReply.PRIMARY_OWNER) throw new Error(`the notification service name is taken (reply ${reply})`);
  return { received, close: () => bus.disconnect() };
}
