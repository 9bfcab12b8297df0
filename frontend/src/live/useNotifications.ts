// Listening to personal notifications from a component;
// NotificationsProvider (notifications.tsx) delivers them.
import { createContext, useContext, useEffect, useEffectEvent } from 'react';

import type { Notification } from '../api/types';

export type NotificationListener = (notification: Notification) => void;

export interface NotificationChannel {
  /** Subscribes a listener; returns the unsubscribe. */
  subscribe: (listener: NotificationListener) => () => void;
  /**
   * Whether the socket is open now. A notice sent while it was not reached
   * no one live: what lists them reads them again when it opens.
   */
  connected: boolean;
}

export const NotificationContext = createContext<NotificationChannel>({ subscribe: () => () => {}, connected: false });

/** Calls `listener` for every notification while the component is mounted. */
export function useNotifications(listener: NotificationListener) {
  const { subscribe } = useContext(NotificationContext);
  // Always the listener of the latest render, without resubscribing.
  const onNotification = useEffectEvent(listener);
  useEffect(() => subscribe((notification) => onNotification(notification)), [subscribe]);
}

/** Whether the notifications socket is open (it reconnects after a pause when it is not). */
export function useNotificationsConnected(): boolean {
  return useContext(NotificationContext).connected;
}
