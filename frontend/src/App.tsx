// Routes, and the providers every page relies on.
import { type QueryClient, QueryClientProvider } from '@tanstack/react-query';
import type { ReactNode } from 'react';
import { Navigate, Route, Routes, useLocation, useParams } from 'react-router-dom';

import { AuthProvider } from './auth/AuthContext';
import { useAuth } from './auth/useAuth';
import { Layout } from './components/Layout';
import { ToastProvider } from './components/Toasts';
import { NotificationsProvider } from './live/notifications';
import { AccountPage } from './pages/AccountPage';
import { AdminPage } from './pages/AdminPage';
import { AuctionRoom } from './pages/AuctionRoom';
import { AuctionsPage } from './pages/AuctionsPage';
import { AuditTrailPage } from './pages/AuditTrailPage';
import {
  ChangePasswordPage,
  ForgotPasswordPage,
  LoginPage,
  RegisterPage,
  ResetPasswordPage,
  VerifyEmailPage,
} from './pages/AuthPages';
import { MyBidsPage } from './pages/MyBidsPage';
import { AuthCompletePage } from './pages/SignInPages';

/** One room per item: following a link to another item starts afresh. */
function ItemRoom() {
  const { id = '' } = useParams();
  return <AuctionRoom key={id} />;
}

function RequireLogin({ children }: { children: ReactNode }) {
  const { status } = useAuth();
  const location = useLocation();
  if (status === 'anonymous') return <Navigate to="/login" replace state={{ from: location.pathname }} />;
  return <>{children}</>;
}

export function AppRoutes() {
  return (
    <Routes>
      <Route element={<Layout />}>
        <Route index element={<AuctionsPage />} />
        <Route path="items/:id" element={<ItemRoom />} />
        <Route path="login" element={<LoginPage />} />
        <Route path="register" element={<RegisterPage />} />
        <Route path="verify-email" element={<VerifyEmailPage />} />
        <Route path="forgot-password" element={<ForgotPasswordPage />} />
        <Route path="reset-password" element={<ResetPasswordPage />} />
        <Route path="auth/complete" element={<AuthCompletePage />} />
        <Route path="account" element={<RequireLogin><AccountPage /></RequireLogin>} />
        <Route path="account/password" element={<RequireLogin><ChangePasswordPage /></RequireLogin>} />
        <Route path="me/bids" element={<RequireLogin><MyBidsPage /></RequireLogin>} />
        <Route path="admin" element={<RequireLogin><AdminPage /></RequireLogin>} />
        <Route path="admin/audit" element={<RequireLogin><AuditTrailPage /></RequireLogin>} />
        <Route path="*" element={<p>There is no such page. <a href="/">See the auctions</a></p>} />
      </Route>
    </Routes>
  );
}

export function App({ queryClient }: { queryClient: QueryClient }) {
  return (
    <QueryClientProvider client={queryClient}>
      <ToastProvider>
        <AuthProvider>
          <NotificationsProvider>
            <AppRoutes />
          </NotificationsProvider>
        </AuthProvider>
      </ToastProvider>
    </QueryClientProvider>
  );
}
