// Listening to personal notifications from a component;
// NotificationsProvider (notifications.tsx) delivers them.
import { createContext, useContext, useEffect, useEffectEvent } from 'react';

import type { Notification } from '../api/types';

export type NotificationListener = (notification: Notification) => void;

/** Subscribes a listener; returns the unsubscribe. */
export const NotificationContext = createContext<(listener: NotificationListener) => () => void>(() => () => {});

/** Calls `listener` for every notification while the component is mounted. */
export function useNotifications(listener: NotificationListener) {
  const subscribe = useContext(NotificationContext);
  // Always the listener of the latest render, without resubscribing.
  const onNotification = useEffectEvent(listener);
  useEffect(() => subscribe((notification) => onNotification(notification)), [subscribe]);
}
